#if canImport(Glibc)
import Glibc
#endif
import CLinux
import Synchronization

/// A NETLINK_ROUTE socket that sends one request at a time and collects its answer.
///
/// Requests carry increasing sequence numbers; replies with another sequence (late answers to a request
/// that timed out) are skipped. Extended ACKs are on, so kernel errors come with their text.
/// Thread-safe: one request at a time holds the socket.
public final class NetlinkSocket: Sendable {
    private struct State {
        var sequence: UInt32 = 0
        var buffer = [UInt8](repeating: 0, count: 256 * 1024)
    }
    private let fd: Int32
    private let state = Mutex(State())

    /// Opens and binds the socket. Fails with EPROTONOSUPPORT/EACCES-like errors from `socket`.
    public init() throws(SystemError) {
        fd = try syscall("socket(AF_NETLINK)") { socket(AF_NETLINK, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), NETLINK_ROUTE) }
        do {
            var one: Int32 = 1
            try syscall("setsockopt(NETLINK_EXT_ACK)") { setsockopt(fd, 270, NETLINK_EXT_ACK, &one, 4) }  // SOL_NETLINK
            try syscall("setsockopt(NETLINK_CAP_ACK)") { setsockopt(fd, 270, NETLINK_CAP_ACK, &one, 4) }
            // The kernel answers in microseconds; a reply missing for 5 s means something is wrong.
            var timeout = timeval(tv_sec: 5, tv_usec: 0)
            try syscall("setsockopt(SO_RCVTIMEO)") { setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size)) }
            var address = sockaddr_nl()
            address.nl_family = sa_family_t(AF_NETLINK)
            try syscall("bind(AF_NETLINK)") {
                withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_nl>.size)) }
                }
            }
        } catch {
            Glibc.close(fd)
            throw error
        }
    }

    deinit { Glibc.close(fd) }

    /// Sends `builder`'s message and returns the kernel's data messages: for a dump (NLM_F_DUMP) every
    /// message up to NLMSG_DONE, otherwise the messages before the ACK (the request must carry NLM_F_ACK).
    /// A negative ACK throws `NetlinkError`; socket failures throw `SystemError` wrapped the same way.
    public func request(_ builder: NetlinkMessageBuilder, operation: @autoclosure () -> String) throws(NetlinkError) -> [NetlinkMessage] {
        try state.withLock { (state: inout State) throws(NetlinkError) -> [NetlinkMessage] in
            state.sequence &+= 1
            let sequence = state.sequence
            let message = builder.finish(sequence: sequence)
            let isDump = message.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 6, as: UInt16.self) } & UInt16(NLM_F_DUMP) == UInt16(NLM_F_DUMP)
            do throws(SystemError) {
                try syscall("send(netlink)") { message.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) } }
            } catch {
                throw NetlinkError(operation: operation(), errno: error.errno, kernelMessage: nil)
            }
            var replies: [NetlinkMessage] = []
            while true {
                let count: Int
                do throws(SystemError) {
                    count = try syscall("recv(netlink)") { state.buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) } }
                } catch {
                    throw NetlinkError(operation: operation(), errno: error.errno, kernelMessage: nil)
                }
                let messages: [NetlinkMessage]
                do throws(NetlinkDecodeError) {
                    messages = try NetlinkMessage.parse(state.buffer[0..<count])
                } catch {
                    throw NetlinkError(operation: operation(), errno: EPROTO, kernelMessage: "malformed reply")
                }
                for reply in messages where reply.sequence == sequence {
                    switch Int32(reply.type) {
                    case NLMSG_ERROR:
                        let (code, text) = decodeNetlinkError(reply)
                        if code != 0 { throw NetlinkError(operation: operation(), errno: code, kernelMessage: text) }
                        if !isDump { return replies }
                    case NLMSG_DONE:
                        return replies
                    case NLMSG_NOOP:
                        continue
                    default:
                        replies.append(reply)
                    }
                }
            }
        }
    }
}
