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
    public static func open(name: String?, kind: TunKind, queues: Int, exclusive: Bool) throws(SystemError) -> TunDevice {
        precondition(queues >= 1)
        var flags = (kind == .tun ? TUND_IFF_TUN : TUND_IFF_TAP) | TUND_IFF_NO_PI
        if queues > 1 { flags |= TUND_IFF_MULTI_QUEUE }
        var descriptors: [Int32] = []
        var actualName = name ?? ""
        do {
            for queue in 0..<queues {
                let fd = try syscall("open(/dev/net/tun)") { Glibc.open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC) }
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
