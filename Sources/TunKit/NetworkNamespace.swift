#if canImport(Glibc)
import Glibc
#endif
import CLinux

/// Another network namespace, held open: a name under /run/netns (`ip netns add`) or the path of a
/// namespace file (`/var/run/netns/cni-…`, `/proc/PID/ns/net`), as container runtimes pass them.
///
/// Descriptors made through it (`open`, `socket`) belong to that namespace for their whole life, whatever
/// thread uses them: tun devices are created and found there, netlink talks to its stack. Holding the
/// namespace's descriptor keeps it alive even after its file is removed; `release` lets it go.
public final class NetworkNamespace: Sendable {
    /// As given: a name or an absolute path.
    public let reference: String
    public let path: String
    private let fd: Int32
    /// The namespace's identity (the nsfs inode): the file at `path` names this one while these match.
    public let device: UInt64
    public let inode: UInt64

    public init(_ reference: String) throws(SystemError) {
        self.reference = reference
        let path = reference.hasPrefix("/") ? reference : "/run/netns/\(reference)"
        self.path = path
        fd = try syscall("open(\(path))") { Glibc.open(path, O_RDONLY | O_CLOEXEC) }
        var status = stat()
        guard fstat(fd, &status) == 0 else {
            let error = SystemError("fstat(\(path))", errno: errno)
            Glibc.close(fd)
            throw error
        }
        device = UInt64(status.st_dev)
        inode = UInt64(status.st_ino)
        // Anything but a network namespace (a regular file, a mount namespace) is refused by the kernel.
        guard tund_netns_open(fd, "/proc/self/ns/net", O_RDONLY | O_CLOEXEC).closingAfterCheck() else {
            let error = SystemError("setns(\(path), CLONE_NEWNET)", errno: errno)
            Glibc.close(fd)
            throw error
        }
    }

    deinit { Glibc.close(fd) }

    /// Whether `path` still names this namespace: false once `ip netns del` (or the runtime) removed it,
    /// or put another namespace there.
    public var isStillThere: Bool {
        var status = stat()
        return lstatus(path, &status) == 0 && UInt64(status.st_dev) == device && UInt64(status.st_ino) == inode
    }

    public func open(_ file: String, flags: Int32) throws(SystemError) -> Int32 {
        try syscall("open(\(file)) in \(reference)") { tund_netns_open(fd, file, flags) }
    }

    public func socket(domain: Int32, type: Int32, protocol: Int32) throws(SystemError) -> Int32 {
        try syscall("socket() in \(reference)") { tund_netns_socket(fd, domain, type, `protocol`) }
    }

    /// `open` in `namespace`, or in this process's own when nil.
    static func open(_ file: String, flags: Int32, in namespace: NetworkNamespace?) throws(SystemError) -> Int32 {
        if let namespace { return try namespace.open(file, flags: flags) }
        return try syscall("open(\(file))") { Glibc.open(file, flags) }
    }

    /// `socket` in `namespace`, or in this process's own when nil.
    static func socket(domain: Int32, type: Int32, protocol: Int32, in namespace: NetworkNamespace?) throws(SystemError) -> Int32 {
        if let namespace { return try namespace.socket(domain: domain, type: type, protocol: `protocol`) }
        return try syscall("socket()") { Glibc.socket(domain, type, `protocol`) }
    }
}

/// stat(2) under a name that a type's own `stat` cannot shadow.
private func lstatus(_ path: String, _ status: inout stat) -> Int32 { stat(path, &status) }

private extension Int32 {
    /// For a probe descriptor: true when it opened (and it is closed again).
    func closingAfterCheck() -> Bool {
        guard self >= 0 else { return false }
        close(self)
        return true
    }
}
