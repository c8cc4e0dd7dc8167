#if canImport(Glibc)
import Glibc
#endif

/// `sysctl net.ipv6.conf.NAME.disable_ipv6`: whether a link takes part in IPv6 at all.
///
/// Why tund touches it: every link with IPv6 on adds its own routes to the IPv6 table (fe80::/64, its
/// link-local and multicast routes), and the kernel walks that whole table each time any link goes up,
/// down or changes carrier (fib6_ifup, rt6_sync_down_dev). With thousands of links, each of those steps
/// costs milliseconds and a restart (every carrier changing at once) takes minutes. Links that carry no
/// IPv6 configuration keep IPv6 off, so the table stays small.
public enum IPv6Switch {
    /// Writes the link's `disable_ipv6`; the kernel acts only when the value changes.
    /// `namespace`: the link's (/proc/sys/net shows the settings of the namespace it is opened in).
    public static func set(enabled: Bool, link name: String, in namespace: NetworkNamespace? = nil) throws(SystemError) {
        let path = "/proc/sys/net/ipv6/conf/\(name)/disable_ipv6"
        let fd: Int32
        do {
            fd = try NetworkNamespace.open(path, flags: O_WRONLY | O_CLOEXEC, in: namespace)
        } catch {
            // No IPv6 in this kernel (ENOENT), or /proc/sys read-only (a container, a sandboxed service:
            // EROFS, EACCES): IPv6 stays as the kernel made it; the devices work, the optimisation is lost.
            if [ENOENT, EROFS, EACCES, EPERM].contains(error.errno) { return }
            throw error
        }
        defer { close(fd) }
        let value: [UInt8] = enabled ? [0x30, 0x0a] : [0x31, 0x0a]
        guard value.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == value.count else {
            throw SystemError("write(\(path))", errno: errno)
        }
    }
}
