#if canImport(Glibc)
import Glibc
#endif
import Errno
import NetAddress
import Synchronization
import Logging
import TundCore

import TundWorkers
import class TundDataPlane.DataPlane

/// An in-memory kernel: links by name, with failures injected per operation. Open devices get a
/// SOCK_SEQPACKET socket pair per queue, so the worker reads real descriptors with packet boundaries and
/// the test writes packets into the peer end.
public final class FakeLinks: LinkControl, @unchecked Sendable {
    public init() {}

    public struct Link {
        public var state: LinkState
        public var persistent = false
        public var openCount = 0
        public var addresses: [IPPrefix] = []
        public var routes: [RouteSpec] = []

        public init(state: LinkState, persistent: Bool = false, openCount: Int = 0, addresses: [IPPrefix] = [], routes: [RouteSpec] = []) {
            self.state = state
            self.persistent = persistent
            self.openCount = openCount
            self.addresses = addresses
            self.routes = routes
        }
    }

    public let lock = NSLockish()
    public var table: [String: Link] = [:]
    public var failures: [String: KernelError] = [:]
    public var nextIndex: Int32 = 10
    public var peers: [String: [Int32]] = [:]

    public func fail(_ operation: String, _ errno: Errno = .EINVAL) {
        failures[operation] = KernelError(operation: operation, errno: errno)
    }

    private func check(_ operation: String) throws(KernelError) {
        if let failure = failures[operation] { throw failure }
    }

    public func addForeign(_ name: String) {
        table[name] = Link(state: state(name, alias: nil))
        table[name]!.persistent = true
    }

    public func state(_ name: String, alias: String?) -> LinkState {
        nextIndex += 1
        return LinkState(index: nextIndex, name: name, mtu: 1500, up: false, operState: "down", flags: [], mac: nil,
                         alias: alias, isTunTap: true, multiQueue: false, counters: nil)
    }

    public func open(name: String?, kind: DeviceKind, queues: Int, exclusive: Bool, vnetHeader: Bool) throws(KernelError) -> any OpenDevice {
        try lock.locked { () throws(KernelError) in
            try check("open")
            let actual = name ?? "\(kind.rawValue)\(table.count)"
            if table[actual] != nil && exclusive { throw KernelError(operation: "ioctl(TUNSETIFF)", errno: .EBUSY) }
            if table[actual] == nil {
                var link = Link(state: state(actual, alias: nil))
                if kind == .tap { link.state.mac = MACAddress("02:aa:bb:cc:dd:ee") }
                table[actual] = link
            }
            table[actual]!.openCount += 1
            var descriptors: [Int32] = []
            var peerEnds: [Int32] = []
            for _ in 0..<queues {
                var pair: [Int32] = [0, 0]
                _ = socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue), 0, &pair)
                _ = fcntl(pair[0], F_SETFL, O_NONBLOCK)
                descriptors.append(pair[0])
                peerEnds.append(pair[1])
            }
            peers[actual] = peerEnds
            return FakeDevice(name: actual, descriptors: descriptors, links: self)
        }
    }

    public func closed(_ name: String) {
        lock.locked {
            guard var link = table[name] else { return }
            link.openCount -= 1
            table[name] = link
            if link.openCount == 0 && !link.persistent { table[name] = nil }
            peers[name]?.forEach { _ = Glibc.close($0) }
            peers[name] = nil
        }
    }

    public func link(named name: String) throws(KernelError) -> LinkState? {
        try lock.locked { () throws(KernelError) in try check("link"); return table[name]?.state }
    }

    public func link(index: Int32) throws(KernelError) -> LinkState? {
        lock.locked { table.values.first { $0.state.index == index }?.state }
    }

    public func links() throws(KernelError) -> [LinkState] { lock.locked { table.values.map(\.state) } }

    public func counters(index: Int32) throws(KernelError) -> KernelCounters? {
        try lock.locked { () throws(KernelError) in
            try check("counters")
            return table.values.first { $0.state.index == index }?.state.counters
        }
    }

    private func name(of index: Int32) -> String? { table.first { $0.value.state.index == index }?.key }

    public func configure(index: Int32, _ settings: LinkSettings) throws(KernelError) {
        try lock.locked { () throws(KernelError) in
            try check("configure")
            guard let name = name(of: index) else { throw KernelError(operation: "configure", errno: .ENODEV) }
            if let up = settings.up {
                table[name]!.state.up = up
                if !up { table[name]!.routes = [] }  // as the kernel does
            }
            if let mtu = settings.mtu { table[name]!.state.mtu = mtu }
            if let mac = settings.mac { table[name]!.state.mac = mac }
            if let alias = settings.alias { table[name]!.state.alias = alias }
        }
    }

    public func deleteLink(index: Int32) throws(KernelError) {
        try lock.locked { () throws(KernelError) in
            try check("deleteLink")
            if let name = name(of: index) { table[name] = nil }
        }
    }

    public func addAddress(_ prefix: IPPrefix, index: Int32, replace: Bool) throws(KernelError) {
        try lock.locked { () throws(KernelError) in
            try check("addAddress")
            guard let name = name(of: index) else { throw KernelError(operation: "addAddress", errno: .ENODEV) }
            if table[name]!.addresses.contains(prefix) {
                if replace { return }
                throw KernelError(operation: "addAddress", errno: .EEXIST)
            }
            table[name]!.addresses.append(prefix)
        }
    }

    public func addRoute(_ route: RouteSpec, index: Int32, replace: Bool) throws(KernelError) {
        try lock.locked { () throws(KernelError) in
            try check("addRoute")
            guard let name = name(of: index) else { throw KernelError(operation: "addRoute", errno: .ENODEV) }
            guard table[name]!.state.up else { throw KernelError(operation: "addRoute", errno: .ENETDOWN) }
            if table[name]!.routes.contains(route) {
                if replace { return }
                throw KernelError(operation: "addRoute", errno: .EEXIST)
            }
            table[name]!.routes.append(route)
        }
    }

    public func deleteAddress(_ prefix: IPPrefix, index: Int32) throws(KernelError) {
        try lock.locked { () throws(KernelError) in
            try check("deleteAddress")
            guard let name = name(of: index) else { throw KernelError(operation: "deleteAddress", errno: .ENODEV) }
            table[name]!.addresses.removeAll { $0 == prefix }
        }
    }

    public func deleteRoute(_ route: RouteSpec, index: Int32) throws(KernelError) {
        try lock.locked { () throws(KernelError) in
            try check("deleteRoute")
            guard let name = name(of: index) else { throw KernelError(operation: "deleteRoute", errno: .ENODEV) }
            table[name]!.routes.removeAll { $0 == route }
        }
    }

    /// Every address the fake holds counts as tund's (the fake has no foreign writers).
    public func addresses(index: Int32) throws(KernelError) -> [(prefix: IPPrefix, owned: Bool)] {
        lock.locked { table.values.first { $0.state.index == index }?.addresses.map { ($0, true) } ?? [] }
    }

    public func ownedRoutes(index: Int32) throws(KernelError) -> [RouteSpec] {
        lock.locked { table.values.first { $0.state.index == index }?.routes ?? [] }
    }

    /// Longest prefix over the links that are up: their addresses' prefixes and their routes.
    public func outputInterface(to address: IPAddress) throws(KernelError) -> Int32? {
        lock.locked {
            var best: (length: Int, index: Int32)?
            for link in table.values where link.state.up {
                for prefix in link.addresses.map(\.network) + link.routes.map(\.destination) where prefix.contains(address) {
                    if best == nil || prefix.length > best!.length { best = (prefix.length, link.state.index) }
                }
            }
            return best?.index
        }
    }

    public func ownedRoutesByLink() throws(KernelError) -> [Int32: [RouteSpec]] {
        lock.locked { Dictionary(uniqueKeysWithValues: table.values.map { ($0.state.index, $0.routes) }) }
    }

    public func setPersistent(_ name: String, _ persistent: Bool) throws(KernelError) {
        try lock.locked { () throws(KernelError) in
            try check("setPersistent")
            table[name]?.persistent = persistent
        }
    }

    /// Writes one packet into queue `queue` of `name`, as the kernel would hand it to the reader.
    public func inject(_ packet: [UInt8], into name: String, queue: Int = 0) {
        let peer = lock.locked { peers[name]![queue] }
        _ = packet.withUnsafeBytes { Glibc.write(peer, $0.baseAddress, $0.count) }
    }
}

public final class FakeDevice: OpenDevice, @unchecked Sendable {
    public let name: String
    public let queueDescriptors: [Int32]
    public let links: FakeLinks
    public var isClosed = false

    public init(name: String, descriptors: [Int32], links: FakeLinks) {
        self.name = name
        queueDescriptors = descriptors
        self.links = links
    }

    public func setPersistent(_ persistent: Bool) throws(KernelError) { try links.setPersistent(name, persistent) }
    public func setOwner(_ uid: Int64) throws(KernelError) {}
    public func setGroup(_ gid: Int64) throws(KernelError) {}
    public func enableOffloads() -> [String] { ["csum"] }

    public func close() {
        guard !isClosed else { return }
        isClosed = true
        queueDescriptors.forEach { _ = Glibc.close($0) }
        links.closed(name)
    }
}

public final class FakeStore: DeviceStore, @unchecked Sendable {
    public init() {}

    public let instanceID = "cafe0001"
    public let lock = NSLockish()
    public var records: [String: DeviceRecord] = [:]
    public var nextID: Int64 = 1
    public var failInsert = false

    /// How many times every row was read.
    public var fullReads = 0

    public func allDevices() throws(TundError) -> [DeviceRecord] {
        lock.locked {
            fullReads += 1
            return records.values.sorted { $0.id! < $1.id! }
        }
    }

    public var claims: [String: IdempotencyClaim] = [:]
    public var failUpdate = false
    public var nextRouteID: Int64 = 1

    public func insert(_ record: DeviceRecord, claim: IdempotencyClaim?) throws(TundError) -> DeviceRecord {
        try lock.locked { () throws(TundError) in
            if failInsert { throw .storageFailed("disk full") }
            if records[record.name] != nil { throw .deviceExists(name: record.name) }
            var stored = record
            stored.id = nextID
            nextID += 1
            assignRouteIDs(&stored)
            records[record.name] = stored
            if let claim { claims[claim.key] = claim }
            return stored
        }
    }

    public func update(_ record: DeviceRecord) throws(TundError) -> DeviceRecord {
        try lock.locked { () throws(TundError) in
            if failUpdate { throw .storageFailed("disk full") }
            var stored = record
            assignRouteIDs(&stored)
            records[record.name] = stored
            return stored
        }
    }

    public func claim(key: String) throws(TundError) -> IdempotencyClaim? { lock.locked { claims[key] } }

    private func assignRouteIDs(_ record: inout DeviceRecord) {
        for index in record.routes.indices where record.routes[index].id == 0 {
            record.routes[index].id = nextRouteID
            nextRouteID += 1
        }
    }

    public var failDelete = false

    public func delete(name: String) throws(TundError) -> Bool {
        try lock.locked { () throws(TundError) in
            if failDelete { throw .storageFailed("disk full") }
            return records.removeValue(forKey: name) != nil
        }
    }
}

/// A tiny lock for the fakes (tests only).
public final class NSLockish: @unchecked Sendable {
    public init() {}

    private let mutex = Mutex(())
    public func locked<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        try mutex.withLock { (_) throws(E) -> T in try body() }
    }
}

/// Kernel notices on demand: the test calls `emit`.
public final class FakeNotices: KernelNotices, @unchecked Sendable {
    public init() {}

    public let lock = NSLockish()
    public var handler: (@Sendable (KernelNotice) -> Void)?

    public func start(_ handler: @escaping @Sendable (KernelNotice) -> Void) throws(KernelError) { lock.locked { self.handler = handler } }
    public func stop() { lock.locked { handler = nil } }
    public func emit(_ notice: KernelNotice) { lock.locked { handler }?(notice) }
}

/// One data plane for every test in a process (its threads live as long as the process), wired to the
/// core as the daemon wires it.
public enum TestPlane {
    public static let workers: any PacketWorkers = {
        do {
            return DataPlaneWorkers(plane: try TundDataPlane.DataPlane(threads: 2))
        } catch {
            fatalError("cannot start the test data plane: \(error)")
        }
    }()

    /// A manager over fakes (or anything else) and the test data plane, not yet restored.
    public static func manager(links: any LinkControl, store: any DeviceStore) -> DeviceManager {
        DeviceManager(links: links, store: store, workers: workers, logger: Logger(label: "test"))
    }
}
