#if canImport(Glibc)
import Glibc
#endif
import Errno
import NetAddress
import Synchronization
@testable import TundCore

/// An in-memory kernel: links by name, with failures injected per operation. Open devices get a
/// SOCK_SEQPACKET socket pair per queue, so the worker reads real descriptors with packet boundaries and
/// the test writes packets into the peer end.
final class FakeLinks: LinkControl, @unchecked Sendable {
    struct Link {
        var state: LinkState
        var persistent = false
        var openCount = 0
        var addresses: [IPPrefix] = []
        var routes: [RouteSpec] = []
    }

    let lock = NSLockish()
    var table: [String: Link] = [:]
    var failures: [String: KernelError] = [:]
    var nextIndex: Int32 = 10
    var peers: [String: [Int32]] = [:]

    func fail(_ operation: String, _ errno: Errno = .EINVAL) {
        failures[operation] = KernelError(operation: operation, errno: errno)
    }

    private func check(_ operation: String) throws(KernelError) {
        if let failure = failures[operation] { throw failure }
    }

    func addForeign(_ name: String) {
        table[name] = Link(state: state(name, alias: nil))
        table[name]!.persistent = true
    }

    func state(_ name: String, alias: String?) -> LinkState {
        nextIndex += 1
        return LinkState(index: nextIndex, name: name, mtu: 1500, up: false, operState: "down", flags: [], mac: nil,
                         alias: alias, isTunTap: true, multiQueue: false, counters: nil)
    }

    func open(name: String?, kind: DeviceKind, queues: Int, exclusive: Bool, vnetHeader: Bool) throws(KernelError) -> any OpenDevice {
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

    func closed(_ name: String) {
        lock.locked {
            guard var link = table[name] else { return }
            link.openCount -= 1
            table[name] = link
            if link.openCount == 0 && !link.persistent { table[name] = nil }
            peers[name]?.forEach { _ = Glibc.close($0) }
            peers[name] = nil
        }
    }

    func link(named name: String) throws(KernelError) -> LinkState? {
        try lock.locked { () throws(KernelError) in try check("link"); return table[name]?.state }
    }

    func link(index: Int32) throws(KernelError) -> LinkState? {
        lock.locked { table.values.first { $0.state.index == index }?.state }
    }

    func links() throws(KernelError) -> [LinkState] { lock.locked { table.values.map(\.state) } }

    private func name(of index: Int32) -> String? { table.first { $0.value.state.index == index }?.key }

    func configure(index: Int32, _ settings: LinkSettings) throws(KernelError) {
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

    func deleteLink(index: Int32) throws(KernelError) {
        try lock.locked { () throws(KernelError) in
            try check("deleteLink")
            if let name = name(of: index) { table[name] = nil }
        }
    }

    func addAddress(_ prefix: IPPrefix, index: Int32, replace: Bool) throws(KernelError) {
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

    func addRoute(_ route: RouteSpec, index: Int32, replace: Bool) throws(KernelError) {
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

    func deleteAddress(_ prefix: IPPrefix, index: Int32) throws(KernelError) {
        try lock.locked { () throws(KernelError) in
            try check("deleteAddress")
            guard let name = name(of: index) else { throw KernelError(operation: "deleteAddress", errno: .ENODEV) }
            table[name]!.addresses.removeAll { $0 == prefix }
        }
    }

    func deleteRoute(_ route: RouteSpec, index: Int32) throws(KernelError) {
        try lock.locked { () throws(KernelError) in
            try check("deleteRoute")
            guard let name = name(of: index) else { throw KernelError(operation: "deleteRoute", errno: .ENODEV) }
            table[name]!.routes.removeAll { $0 == route }
        }
    }

    /// Every address the fake holds counts as tund's (the fake has no foreign writers).
    func addresses(index: Int32) throws(KernelError) -> [(prefix: IPPrefix, owned: Bool)] {
        lock.locked { table.values.first { $0.state.index == index }?.addresses.map { ($0, true) } ?? [] }
    }

    func ownedRoutes(index: Int32) throws(KernelError) -> [RouteSpec] {
        lock.locked { table.values.first { $0.state.index == index }?.routes ?? [] }
    }

    /// Longest prefix over the links that are up: their addresses' prefixes and their routes.
    func outputInterface(to address: IPAddress) throws(KernelError) -> Int32? {
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

    func ownedRoutesByLink() throws(KernelError) -> [Int32: [RouteSpec]] {
        lock.locked { Dictionary(uniqueKeysWithValues: table.values.map { ($0.state.index, $0.routes) }) }
    }

    func setPersistent(_ name: String, _ persistent: Bool) throws(KernelError) {
        try lock.locked { () throws(KernelError) in
            try check("setPersistent")
            table[name]?.persistent = persistent
        }
    }

    /// Writes one packet into queue `queue` of `name`, as the kernel would hand it to the reader.
    func inject(_ packet: [UInt8], into name: String, queue: Int = 0) {
        let peer = lock.locked { peers[name]![queue] }
        _ = packet.withUnsafeBytes { Glibc.write(peer, $0.baseAddress, $0.count) }
    }
}

final class FakeDevice: OpenDevice, @unchecked Sendable {
    let name: String
    let queueDescriptors: [Int32]
    let links: FakeLinks
    var isClosed = false

    init(name: String, descriptors: [Int32], links: FakeLinks) {
        self.name = name
        queueDescriptors = descriptors
        self.links = links
    }

    func setPersistent(_ persistent: Bool) throws(KernelError) { try links.setPersistent(name, persistent) }
    func setOwner(_ uid: Int64) throws(KernelError) {}
    func setGroup(_ gid: Int64) throws(KernelError) {}
    func enableOffloads() -> [String] { ["csum"] }

    func close() {
        guard !isClosed else { return }
        isClosed = true
        queueDescriptors.forEach { _ = Glibc.close($0) }
        links.closed(name)
    }
}

final class FakeStore: DeviceStore, @unchecked Sendable {
    let instanceID = "cafe0001"
    let lock = NSLockish()
    var records: [String: DeviceRecord] = [:]
    var nextID: Int64 = 1
    var failInsert = false

    func allDevices() throws(TundError) -> [DeviceRecord] {
        lock.locked { records.values.sorted { $0.id! < $1.id! } }
    }

    var claims: [String: IdempotencyClaim] = [:]
    var failUpdate = false
    var nextRouteID: Int64 = 1

    func insert(_ record: DeviceRecord, claim: IdempotencyClaim?) throws(TundError) -> DeviceRecord {
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

    func update(_ record: DeviceRecord) throws(TundError) -> DeviceRecord {
        try lock.locked { () throws(TundError) in
            if failUpdate { throw .storageFailed("disk full") }
            var stored = record
            assignRouteIDs(&stored)
            records[record.name] = stored
            return stored
        }
    }

    func claim(key: String) throws(TundError) -> IdempotencyClaim? { lock.locked { claims[key] } }

    private func assignRouteIDs(_ record: inout DeviceRecord) {
        for index in record.routes.indices where record.routes[index].id == 0 {
            record.routes[index].id = nextRouteID
            nextRouteID += 1
        }
    }

    var failDelete = false

    func delete(name: String) throws(TundError) -> Bool {
        try lock.locked { () throws(TundError) in
            if failDelete { throw .storageFailed("disk full") }
            return records.removeValue(forKey: name) != nil
        }
    }
}

/// A tiny lock for the fakes (tests only).
final class NSLockish: @unchecked Sendable {
    private let mutex = Mutex(())
    func locked<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        try mutex.withLock { (_) throws(E) -> T in try body() }
    }
}

/// Kernel notices on demand: the test calls `emit`.
final class FakeNotices: KernelNotices, @unchecked Sendable {
    let lock = NSLockish()
    var handler: (@Sendable (KernelNotice) -> Void)?

    func start(_ handler: @escaping @Sendable (KernelNotice) -> Void) throws(KernelError) { lock.locked { self.handler = handler } }
    func stop() { lock.locked { handler = nil } }
    func emit(_ notice: KernelNotice) { lock.locked { handler }?(notice) }
}
