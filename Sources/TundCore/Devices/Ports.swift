import Errno
import NetAddress

/// An open TUN/TAP device: its kernel name and one descriptor per queue, owned by the object.
public protocol OpenDevice: AnyObject, Sendable {
    var name: String { get }
    var queueDescriptors: [Int32] { get }
    /// TUNSETPERSIST: a persistent device outlives its descriptors.
    func setPersistent(_ persistent: Bool) throws(KernelError)
    func setOwner(_ uid: Int64) throws(KernelError)
    func setGroup(_ gid: Int64) throws(KernelError)
    /// Closes every descriptor once; a device that is not persistent vanishes.
    func close()
    /// TUNSETOFFLOAD with fallbacks (device opened with a virtio header); the names of what the kernel granted.
    func enableOffloads() -> [String]
}

/// Changes to a link; nil fields stay as they are.
public struct LinkSettings: Equatable, Sendable {
    public var up: Bool?
    public var mtu: Int?
    public var mac: MACAddress?
    public var alias: String?

    public init(up: Bool? = nil, mtu: Int? = nil, mac: MACAddress? = nil, alias: String? = nil) {
        self.up = up
        self.mtu = mtu
        self.mac = mac
        self.alias = alias
    }
}

/// What the core needs from the kernel: TUN/TAP descriptors and rtnetlink. Adapted from TunKit in the
/// executable; faked in memory by the core's tests.
public protocol LinkControl: Sendable {
    /// Creates (`exclusive`) or attaches to a TUN/TAP device; nil name lets the kernel pick one.
    /// `vnetHeader`: every packet carries a virtio header (needed for offloads).
    func open(name: String?, kind: DeviceKind, queues: Int, exclusive: Bool, vnetHeader: Bool) throws(KernelError) -> any OpenDevice
    /// nil when no link has that name.
    func link(named name: String) throws(KernelError) -> LinkState?
    /// nil when the index no longer exists. Includes the kernel counters.
    func link(index: Int32) throws(KernelError) -> LinkState?
    func links() throws(KernelError) -> [LinkState]
    /// Only the kernel counters of one ifindex (RTM_GETSTATS): far less for the kernel to gather than
    /// `link(index:)`. nil when the index no longer exists.
    func counters(index: Int32) throws(KernelError) -> KernelCounters?
    func configure(index: Int32, _ settings: LinkSettings) throws(KernelError)
    func deleteLink(index: Int32) throws(KernelError)
    /// `replace`: succeed when the address exists already (restore).
    func addAddress(_ prefix: IPPrefix, index: Int32, replace: Bool) throws(KernelError)
    func addRoute(_ route: RouteSpec, index: Int32, replace: Bool) throws(KernelError)
    func deleteAddress(_ prefix: IPPrefix, index: Int32) throws(KernelError)
    func deleteRoute(_ route: RouteSpec, index: Int32) throws(KernelError)
    /// Addresses on the link; `owned` marks the ones tund added (its IFA_PROTO).
    func addresses(index: Int32) throws(KernelError) -> [(prefix: IPPrefix, owned: Bool)]
    /// Main-table routes out of the link that tund installed (its route protocol).
    func ownedRoutes(index: Int32) throws(KernelError) -> [RouteSpec]
    /// `ip route get ADDRESS`: the ifindex the kernel would send a packet to `address` out of (policy
    /// rules, the local table and longest prefix included); nil when it has no route.
    func outputInterface(to address: IPAddress) throws(KernelError) -> Int32?
    /// The same for every link at once, by ifindex: one dump for a pass over all devices.
    func ownedRoutesByLink() throws(KernelError) -> [Int32: [RouteSpec]]
    /// Every address of the namespace by ifindex: one dump for a pass over all devices.
    func addressesByLink() throws(KernelError) -> [Int32: [(prefix: IPPrefix, owned: Bool)]]
    /// Many changes at once, pipelined where the kernel allows; one result per change, in order, nil for
    /// success. A failure does not stop the changes after it.
    func perform(_ changes: [LinkChangeRequest]) -> [KernelError?]
    /// Removes many links at once (`ip link del group`): one unregistration for all of them.
    func deleteLinks(_ indexes: [Int32]) throws(KernelError)
    /// Turns IPv6 on or off on one link (`net.ipv6.conf.NAME.disable_ipv6`).
    func setIPv6(enabled: Bool, name: String) throws(KernelError)
}

extension Sequence<LinkState> {
    /// The links by name (a name is unique in a namespace; the first wins should a dump race a rename).
    func byName() -> [String: LinkState] {
        Dictionary(map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
    }
}

/// One change of a batch (`LinkControl.perform`).
public enum LinkChangeRequest: Sendable, Equatable {
    case configure(index: Int32, LinkSettings)
    case addAddress(IPPrefix, index: Int32, replace: Bool)
    case addRoute(RouteSpec, index: Int32, replace: Bool)
    case deleteAddress(IPPrefix, index: Int32)
    case deleteRoute(RouteSpec, index: Int32)

    /// Whether it removes something (which may already be gone).
    public var removes: Bool {
        switch self {
        case .deleteAddress, .deleteRoute: true
        case .configure, .addAddress, .addRoute: false
        }
    }
}

extension LinkControl {
    /// One change after the other: adapters without pipelining, and fakes.
    public func perform(_ changes: [LinkChangeRequest]) -> [KernelError?] {
        changes.map { change in
            do throws(KernelError) {
                switch change {
                case .configure(let index, let settings): try configure(index: index, settings)
                case .addAddress(let prefix, let index, let replace): try addAddress(prefix, index: index, replace: replace)
                case .addRoute(let route, let index, let replace): try addRoute(route, index: index, replace: replace)
                case .deleteAddress(let prefix, let index): try deleteAddress(prefix, index: index)
                case .deleteRoute(let route, let index): try deleteRoute(route, index: index)
                }
                return nil
            } catch {
                return error
            }
        }
    }

    /// Fakes have no IPv6 to switch.
    public func setIPv6(enabled: Bool, name: String) throws(KernelError) {}

    public func deleteLinks(_ indexes: [Int32]) throws(KernelError) {
        for index in indexes { try deleteLink(index: index) }
    }

    public func addressesByLink() throws(KernelError) -> [Int32: [(prefix: IPPrefix, owned: Bool)]] {
        var all: [Int32: [(prefix: IPPrefix, owned: Bool)]] = [:]
        for link in try links() { all[link.index] = try addresses(index: link.index) }
        return all
    }
}

/// Another network namespace, as the core needs it: the kernel ports of that namespace, and whether it
/// is still there.
public struct NamespaceKernel: Sendable {
    public var links: any LinkControl
    public var notices: any KernelNotices
    /// False once the namespace's file is gone (`ip netns del`, the container exited) or names another.
    public var isPresent: @Sendable () -> Bool

    public init(links: any LinkControl, notices: any KernelNotices, isPresent: @escaping @Sendable () -> Bool) {
        self.links = links
        self.notices = notices
        self.isPresent = isPresent
    }
}

/// Opens network namespaces by the reference a device gives (`netns`).
public protocol NamespaceOpener: Sendable {
    /// A name under /run/netns or an absolute path; throws (ENOENT, EINVAL) when it names no namespace.
    func open(_ reference: String) throws(KernelError) -> NamespaceKernel
    /// Throws as `open` would, without making the sockets and the monitor `open` makes (a dry run asks).
    func check(_ reference: String) throws(KernelError)
}

extension NamespaceOpener {
    public func check(_ reference: String) throws(KernelError) { _ = try open(reference) }
}

/// A change in the kernel that may concern a device, as the kernel announced it.
public enum KernelNotice: Sendable, Equatable {
    case link(name: String, index: Int32, up: Bool, deleted: Bool)
    case address(index: Int32)
    case route(index: Int32?)
    /// Notices were lost: resynchronize everything.
    case overflow
}

/// A source of kernel notices (rtnetlink multicast groups), started once the devices are restored.
public protocol KernelNotices: Sendable {
    func start(_ handler: @escaping @Sendable (KernelNotice) -> Void) throws(KernelError)
    func stop()
}

/// A claim on an `Idempotency-Key`: which request (fingerprint) made which device.
public struct IdempotencyClaim: Equatable, Sendable {
    public var key: String
    public var fingerprint: String
    public var deviceName: String

    public init(key: String, fingerprint: String, deviceName: String) {
        self.key = key
        self.fingerprint = fingerprint
        self.deviceName = deviceName
    }
}

/// What the core needs from storage: the desired state.
public protocol DeviceStore: Sendable {
    /// Names this database in the alias of the links it owns.
    var instanceID: String { get }
    func allDevices() throws(TundError) -> [DeviceRecord]
    /// Stores a new device, and the key's claim in the same transaction; returns it with its ids.
    /// A taken name throws `.deviceExists`.
    func insert(_ record: DeviceRecord, claim: IdempotencyClaim?) throws(TundError) -> DeviceRecord
    /// Replaces a stored device's fields, addresses and routes (routes keep their ids; new ones get ids).
    func update(_ record: DeviceRecord) throws(TundError) -> DeviceRecord
    /// The claim on `key`, if one was made in the last 24 hours.
    func claim(key: String) throws(TundError) -> IdempotencyClaim?
    /// Returns false when no such device was stored.
    func delete(name: String) throws(TundError) -> Bool
    /// Deletes (by name), rewrites and inserts rows in one transaction; returns the inserted and updated
    /// records with their ids, in the order given.
    func apply(insert: [DeviceRecord], update: [DeviceRecord], delete: [String]) throws(TundError) -> (inserted: [DeviceRecord], updated: [DeviceRecord])
}

extension DeviceStore {
    /// One row at a time, for stores without transactions of their own (fakes).
    public func apply(insert: [DeviceRecord], update: [DeviceRecord], delete: [String]) throws(TundError) -> (inserted: [DeviceRecord], updated: [DeviceRecord]) {
        for name in delete { _ = try self.delete(name: name) }
        var updated: [DeviceRecord] = []
        for record in update { updated.append(try self.update(record)) }
        var inserted: [DeviceRecord] = []
        for record in insert { inserted.append(try self.insert(record, claim: nil)) }
        return (inserted, updated)
    }
}

/// The data plane, as the core needs it: start a device's worker with a mode and the device's queue
/// descriptors; the worker stops, says whether it runs, and counts.
public protocol PacketWorkers: Sendable {
    func start(_ request: WorkerRequest) throws(KernelError) -> any RunningWorker
}

public struct WorkerRequest: Sendable {
    public var name: String
    public var kind: DeviceKind
    public var mode: WorkerMode
    /// Set exactly when `mode` is `.tunnel`.
    public var tunnel: TunnelSpec?
    /// Set exactly when `mode` is `.wireguard`.
    public var wireguard: WireGuardSpec?
    public var descriptors: [Int32]
    public var vnetHeader: Bool
    /// The device's MTU: a wireguard worker pads packets up to a multiple of 16 but never past it.
    public var mtu: Int = 0
    /// Receives copies of what the worker reads while someone captures.
    public var capture: CaptureHub
    /// Runs once, on a data-plane thread, when the worker stops by itself; it must not stop the worker.
    public var onFailure: @Sendable (String) -> Void
    /// A wireguard worker's peer events, on a data-plane thread (quick, and not into the worker).
    public var onPeerEvent: @Sendable (WireGuardPeerNotice) -> Void = { _ in }
}

/// What a wireguard worker says about one of its peers, as it happens.
public struct WireGuardPeerNotice: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case handshake
        case stale(reason: String)
    }

    public var kind: Kind
    /// Base64, as `wg` prints it.
    public var publicKey: String
    public var endpoint: String?

    public init(kind: Kind, publicKey: String, endpoint: String?) {
        self.kind = kind
        self.publicKey = publicKey
        self.endpoint = endpoint
    }
}

public protocol RunningWorker: AnyObject, Sendable {
    /// Takes the worker's descriptors out of the data plane (out when this returns) and closes its socket.
    func stop()
    var isRunning: Bool { get }
    func queueCounters() -> [QueueCounterValues]
    /// A wireguard worker's peers as it sees them now; empty in other modes.
    func wireGuardPeers() -> [WireGuardPeerStatus]
    /// Gives a running wireguard worker its new set of peers; the sessions of peers kept stay up. False
    /// when the worker cannot (another mode): the caller restarts it instead.
    func setWireGuardPeers(_ peers: [WireGuardPeerSpec]) -> Bool
    /// A wireguard worker's drops of packets that name no peer (bad_mac, unknown_peer, no_route).
    func wireGuardDeviceDrops() -> [String: UInt64]
    /// Tells a running worker the device's new MTU (a wireguard worker's padding stops at it).
    func setMTU(_ mtu: Int)
}

extension RunningWorker {
    public func wireGuardPeers() -> [WireGuardPeerStatus] { [] }
    public func wireGuardDeviceDrops() -> [String: UInt64] { [:] }
    public func setWireGuardPeers(_ peers: [WireGuardPeerSpec]) -> Bool { false }
    public func setMTU(_ mtu: Int) {}
}
