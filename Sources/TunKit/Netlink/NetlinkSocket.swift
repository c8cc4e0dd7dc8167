#if canImport(Glibc)
import Glibc
#endif
import CLinux
import Synchronization

/// A NETLINK_ROUTE socket that sends one request (or one pipelined batch) at a time and collects the answer.
///
/// Requests carry increasing sequence numbers; replies with another sequence (late answers to a request
/// that timed out) are skipped. Extended ACKs are on, so kernel errors come with their text. Strict
/// checking is on where the kernel has it (4.20+), so dumps can be filtered by the kernel (addresses of
/// one link, routes out of one link) instead of shipping every object of the host to be filtered here.
/// Thread-safe: one request or batch at a time holds the socket.
public final class NetlinkSocket: Sendable {
    private struct State {
        var sequence: UInt32 = 0
        var buffer = [UInt8](repeating: 0, count: 256 * 1024)
    }
    private let fd: Int32
    private let state = Mutex(State())
    /// The kernel filters dumps by the request's header and attributes (NETLINK_GET_STRICT_CHK).
    public let strictChecking: Bool
    /// The port id the kernel gave this socket: notifications of changes this socket asked for carry it.
    public let portID: UInt32

    /// Opens and binds the socket. Fails with EPROTONOSUPPORT/EACCES-like errors from `socket`.
    /// `namespace`: the stack it talks to; nil for this process's own.
    public init(in namespace: NetworkNamespace? = nil) throws(SystemError) {
        let type = Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        let fd = try NetworkNamespace.socket(domain: AF_NETLINK, type: type, protocol: NETLINK_ROUTE, in: namespace)
        do {
            var one: Int32 = 1
            try syscall("setsockopt(NETLINK_EXT_ACK)") { setsockopt(fd, 270, NETLINK_EXT_ACK, &one, 4) }  // SOL_NETLINK
            try syscall("setsockopt(NETLINK_CAP_ACK)") { setsockopt(fd, 270, NETLINK_CAP_ACK, &one, 4) }
            let strict = setsockopt(fd, 270, NETLINK_GET_STRICT_CHK, &one, 4) == 0
            // Room for the acknowledgements of a whole pipelined batch.
            var receiveBuffer: Int32 = 4 << 20
            _ = setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receiveBuffer, 4)
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
            var bound = sockaddr_nl()
            var length = socklen_t(MemoryLayout<sockaddr_nl>.size)
            try syscall("getsockname(AF_NETLINK)") {
                withUnsafeMutablePointer(to: &bound) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
                }
            }
            self.fd = fd
            strictChecking = strict
            portID = bound.nl_pid
        } catch {
            Glibc.close(fd)
            throw error
        }
    }

    deinit { Glibc.close(fd) }

    /// Sends `builder`'s message and returns the kernel's data messages: for a dump (NLM_F_DUMP) every
    /// message up to NLMSG_DONE; for a request with NLM_F_ACK the messages before the ACK; for a query
    /// without it (a get of one object) its one answer.
    /// A negative ACK throws `NetlinkError`; socket failures throw `SystemError` wrapped the same way.
    public func request(_ builder: NetlinkMessageBuilder, operation: @autoclosure () -> String) throws(NetlinkError) -> [NetlinkMessage] {
        try state.withLock { (state: inout State) throws(NetlinkError) -> [NetlinkMessage] in
            state.sequence &+= 1
            let sequence = state.sequence
            let message = builder.finish(sequence: sequence)
            let flags = message.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 6, as: UInt16.self) }
            let isDump = flags & UInt16(NLM_F_DUMP) == UInt16(NLM_F_DUMP)
            // A query without NLM_F_ACK is answered by exactly one message (or an error): no ACK to wait for.
            let single = !isDump && flags & UInt16(NLM_F_ACK) == 0
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
                        if single { return replies }
                    }
                }
            }
        }
    }

    /// Sends every request of `builders` (none of them a dump; each must carry NLM_F_ACK) pipelined, many
    /// per `send`, the way `ip -batch` would if it did not wait for each answer; the kernel handles them in
    /// order. Returns one result per request: nil for success, the kernel's error otherwise. A failed
    /// request does not stop the ones after it. A socket failure fails the requests not yet acknowledged.
    public func requests(_ builders: [NetlinkMessageBuilder], operation: (Int) -> String) -> [NetlinkError?] {
        var results = [NetlinkError?](repeating: nil, count: builders.count)
        state.withLock { (state: inout State) in
            var start = 0
            while start < builders.count {
                // A chunk the socket's send buffer takes in one datagram, and whose answers its receive buffer holds.
                var chunk: [UInt8] = []
                var end = start
                var firstSequence: UInt32 = 0
                while end < builders.count && (chunk.isEmpty || chunk.count + builders[end].bytes.count <= 64 * 1024) && end - start < 512 {
                    state.sequence &+= 1
                    if end == start { firstSequence = state.sequence }
                    chunk += builders[end].finish(sequence: state.sequence)
                    end += 1
                }
                var pending = end - start
                let sent = chunk.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
                if sent < 0 {
                    let code = errno
                    for index in start..<builders.count { results[index] = NetlinkError(operation: operation(index), errno: code, kernelMessage: nil) }
                    return
                }
                while pending > 0 {
                    let count = state.buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                    if count < 0 {
                        let code = errno
                        for index in start..<builders.count where results[index] == nil {
                            results[index] = NetlinkError(operation: operation(index), errno: code, kernelMessage: "no acknowledgement")
                        }
                        return
                    }
                    guard let messages = try? NetlinkMessage.parse(state.buffer[0..<count]) else { continue }
                    for reply in messages where Int32(reply.type) == NLMSG_ERROR {
                        let offset = Int(reply.sequence &- firstSequence)
                        guard offset >= 0 && offset < end - start else { continue }
                        let (code, text) = decodeNetlinkError(reply)
                        if code != 0 { results[start + offset] = NetlinkError(operation: operation(start + offset), errno: code, kernelMessage: text) }
                        pending -= 1
                    }
                }
                start = end
            }
        }
        return results
    }
}
