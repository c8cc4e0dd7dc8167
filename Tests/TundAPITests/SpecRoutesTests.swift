#if canImport(Glibc)
import Glibc
#endif
import Errno
import Logging
import NetAddress
import Testing
import TundCore
import TundFakes
@testable import TundAPI

/// The routes the API serves and the operations `api/openapi.yaml` lists are the same set.
@Suite struct SpecRoutesTests {
    /// `METHOD /path` for every operation under `paths:`; the spec keeps paths at two spaces of
    /// indentation and methods at four (a convention stated in the spec's header comment).
    static func specOperations() throws -> Set<String> {
        let specPath = String(#filePath.split(separator: "/").dropLast(3).joined(separator: "/")) + "/api/openapi.yaml"
        let text = try #require(readText("/" + specPath), "cannot read \(specPath)")
        var operations = Set<String>()
        var inPaths = false
        var currentPath: String?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if !line.hasPrefix(" ") && !line.isEmpty && !line.hasPrefix("#") { inPaths = line.hasPrefix("paths:") }
            guard inPaths else { continue }
            if line.hasPrefix("  /") && !line.hasPrefix("   ") && line.hasSuffix(":") {
                currentPath = String(line.dropFirst(2).dropLast())
            } else if line.hasPrefix("    ") && !line.hasPrefix("     "), let currentPath {
                let key = line.dropFirst(4).prefix { $0 != ":" }
                if ["get", "post", "put", "patch", "delete", "head", "options"].contains(String(key)) {
                    operations.insert("\(key.uppercased()) \(currentPath)")
                }
            }
        }
        return operations
    }

    @Test func servedRoutesMatchTheSpec() throws {
        let manager = TestPlane.manager(links: UnusedLinks(), store: UnusedStore())
        let served = Set(TundAPI(fleet: DeviceFleet(home: manager, opener: nil), logger: Logger(label: "test")).router.endpoints.map { "\($0.method) \($0.pattern)" })
        let specified = try Self.specOperations()
        #expect(!specified.isEmpty)
        #expect(served.subtracting(specified).isEmpty, "served but not in the spec: \(served.subtracting(specified).sorted())")
        #expect(specified.subtracting(served).isEmpty, "in the spec but not served: \(specified.subtracting(served).sorted())")
    }
}

func readText(_ path: String) -> String? {
    guard let file = fopen(path, "r") else { return nil }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = fread(&buffer, 1, buffer.count, file)
        if count == 0 { break }
        bytes += buffer[0..<count]
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// Ports that are never called: building the router needs a manager, not a kernel.
struct UnusedLinks: LinkControl {
    static let unused = KernelError(operation: "unused", errno: .ENOSYS)
    func open(name: String?, kind: DeviceKind, queues: Int, exclusive: Bool, vnetHeader: Bool) throws(KernelError) -> any OpenDevice { throw Self.unused }
    func link(named name: String) throws(KernelError) -> LinkState? { throw Self.unused }
    func link(index: Int32) throws(KernelError) -> LinkState? { throw Self.unused }
    func links() throws(KernelError) -> [LinkState] { throw Self.unused }
    func counters(index: Int32) throws(KernelError) -> KernelCounters? { throw Self.unused }
    func configure(index: Int32, _ settings: LinkSettings) throws(KernelError) { throw Self.unused }
    func deleteLink(index: Int32) throws(KernelError) { throw Self.unused }
    func addAddress(_ prefix: IPPrefix, index: Int32, replace: Bool) throws(KernelError) { throw Self.unused }
    func addRoute(_ route: RouteSpec, index: Int32, replace: Bool) throws(KernelError) { throw Self.unused }
    func deleteAddress(_ prefix: IPPrefix, index: Int32) throws(KernelError) { throw Self.unused }
    func deleteRoute(_ route: RouteSpec, index: Int32) throws(KernelError) { throw Self.unused }
    func addresses(index: Int32) throws(KernelError) -> [(prefix: IPPrefix, owned: Bool)] { throw Self.unused }
    func ownedRoutes(index: Int32) throws(KernelError) -> [RouteSpec] { throw Self.unused }
    func ownedRoutesByLink() throws(KernelError) -> [Int32: [RouteSpec]] { throw Self.unused }
    func outputInterface(to address: IPAddress) throws(KernelError) -> Int32? { throw Self.unused }
}

struct UnusedStore: DeviceStore {
    var instanceID: String { "unused" }
    func allDevices() throws(TundError) -> [DeviceRecord] { [] }
    func insert(_ record: DeviceRecord, claim: IdempotencyClaim?) throws(TundError) -> DeviceRecord { throw .storageFailed("unused") }
    func update(_ record: DeviceRecord) throws(TundError) -> DeviceRecord { throw .storageFailed("unused") }
    func claim(key: String) throws(TundError) -> IdempotencyClaim? { nil }
    func delete(name: String) throws(TundError) -> Bool { false }
}
