#if canImport(Glibc)
import Glibc
#endif
import CLinux
import Synchronization

/// Layer 3 (IP packets) or layer 2 (Ethernet frames).
public enum TunKind: String, Sendable {
    case tun, tap
}

/// A TUN/TAP device opened through `/dev/net/tun`, one non-blocking descriptor per queue.
///
/// The kernel has no netlink call that creates one: `open("/dev/net/tun")` then `ioctl(TUNSETIFF)`.
/// Equivalent to: `ip tuntap add dev NAME mode tun|tap [multi_queue]` (while the descriptors stay open).
/// A device that is not persistent vanishes, with its addresses and routes, when the last descriptor
/// closes; `setPersistent(true)` keeps it after that.
public final class TunDevice: Sendable {
    /// The kernel's name for the device (the one it picked when none was asked for).
    public let name: String
    public let kind: TunKind
    /// One descriptor per queue, non-blocking, close-on-exec. Owned by this object.
    public let queueDescriptors: [Int32]
    private let closed = Atomic<Bool>(false)

    private init(name: String, kind: TunKind, queueDescriptors: [Int32]) {
        self.name = name
        self.kind = kind
        self.queueDescriptors = queueDescriptors
    }

    /// Creates a new device (`exclusive`: fails with EBUSY if `name` exists) or attaches to an existing
    /// one with the same kind and queue mode. `name` nil lets the kernel pick `tunN`/`tapN`.
    /// Every descriptor opened so far is closed when a later step fails.
    /// `vnetHeader`: every read and write carries a 10-byte `struct virtio_net_hdr` first (IFF_VNET_HDR),
    /// which is what lets the kernel hand over and take TCP/UDP super-packets (see `enableOffloads`).
    /// `namespace`: where the device is made or found (a tun descriptor belongs to the namespace it was
    /// opened in); nil for this process's own.
    public static func open(name: String?, kind: TunKind, queues: Int, exclusive: Bool, vnetHeader: Bool = false,
                            in namespace: NetworkNamespace? = nil) throws(SystemError) -> TunDevice {
        precondition(queues >= 1)
        var flags = (kind == .tun ? TUND_IFF_TUN : TUND_IFF_TAP) | TUND_IFF_NO_PI
        if queues > 1 { flags |= TUND_IFF_MULTI_QUEUE }
        if vnetHeader { flags |= TUND_IFF_VNET_HDR }
        var descriptors: [Int32] = []
        var actualName = name ?? ""
        do {
            for queue in 0..<queues {
                let fd = try NetworkNamespace.open("/dev/net/tun", flags: O_RDWR | O_NONBLOCK | O_CLOEXEC, in: namespace)
                descriptors.append(fd)
                // Only the first queue may create; the others attach to what it made.
                let queueFlags = queue == 0 && exclusive ? flags | TUND_IFF_TUN_EXCL : flags
                var nameOut = [CChar](repeating: 0, count: 16)
                try syscall("ioctl(TUNSETIFF)") { tund_tun_set_iff(fd, actualName, queueFlags, &nameOut) }
                actualName = String(cString: nameOut)
            }
        } catch {
            descriptors.forEach { _ = Glibc.close($0) }
            throw error
        }
        return TunDevice(name: actualName, kind: kind, queueDescriptors: descriptors)
    }

    /// TUNSETPERSIST: a persistent device outlives its descriptors (and this process).
    /// Equivalent to `ip tuntap add` (persistent) / `ip tuntap del` once the descriptors close.
    public func setPersistent(_ persistent: Bool) throws(SystemError) {
        try syscall("ioctl(TUNSETPERSIST)") { ioctl(queueDescriptors[0], TUND_TUNSETPERSIST, CInt(persistent ? 1 : 0)) }
    }

    /// Offloads a TUNSETOFFLOAD can ask for. USO (Linux 6.2+) is missing from older headers.
    public struct Offloads: OptionSet, Sendable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        /// The kernel may hand over packets whose checksum is not computed yet (NEEDS_CSUM).
        public static let checksum = Offloads(rawValue: 0x01)
        public static let tso4 = Offloads(rawValue: 0x02)
        public static let tso6 = Offloads(rawValue: 0x04)
        public static let uso4 = Offloads(rawValue: 0x20)
        public static let uso6 = Offloads(rawValue: 0x40)

        public var names: [String] {
            [(Self.checksum, "csum"), (.tso4, "tso4"), (.tso6, "tso6"), (.uso4, "uso4"), (.uso6, "uso6")]
                .filter { contains($0.0) }.map(\.1)
        }
    }

    /// TUNSETOFFLOAD, asking for the most the kernel grants: checksum, TSO and USO, then without USO (an
    /// older kernel), then checksum alone; returns what was granted (empty when every attempt failed:
    /// the device then works packet by packet). Needs a device opened with `vnetHeader`.
    public func enableOffloads() -> Offloads {
        for wanted: Offloads in [[.checksum, .tso4, .tso6, .uso4, .uso6], [.checksum, .tso4, .tso6], [.checksum]] {
            if ioctl(queueDescriptors[0], TUND_TUNSETOFFLOAD, CInt(bitPattern: wanted.rawValue)) == 0 { return wanted }
        }
        return []
    }

    /// TUNSETOWNER: the user allowed to attach to the device without CAP_NET_ADMIN (-1: anyone).
    public func setOwner(_ uid: Int64) throws(SystemError) {
        try syscall("ioctl(TUNSETOWNER)") { ioctl(queueDescriptors[0], TUND_TUNSETOWNER, CInt(truncatingIfNeeded: uid)) }
    }

    /// TUNSETGROUP: the group allowed to attach to the device without CAP_NET_ADMIN (-1: any).
    public func setGroup(_ gid: Int64) throws(SystemError) {
        try syscall("ioctl(TUNSETGROUP)") { ioctl(queueDescriptors[0], TUND_TUNSETGROUP, CInt(truncatingIfNeeded: gid)) }
    }

    /// Closes every queue descriptor once; later calls do nothing. A device that is not persistent
    /// disappears from the kernel here.
    public func close() {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        queueDescriptors.forEach { _ = Glibc.close($0) }
    }

    deinit { close() }
}
