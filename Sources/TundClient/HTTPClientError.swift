#if canImport(Glibc)
import Glibc
#endif

/// Why an HTTP exchange with tund did not produce an answer (tundctl exits with status 2, tund-cni
/// reports "try again later").
public enum HTTPClientError: Error, Equatable {
    /// The host name did not resolve.
    case unresolvable(host: String, reason: String)
    /// No connection could be made (ECONNREFUSED, ENOENT for a socket path, ETIMEDOUT, ...).
    case unreachable(errno: Int32)
    /// The connection broke while sending or receiving.
    case connectionLost(errno: Int32)
    /// The connection ended before the answer was complete (tund stopped, or the network broke).
    case closedEarly
    /// tund did not send anything within the read timeout.
    case timedOut
    /// What came back is not HTTP/1.x as tundctl understands it.
    case malformed(String)

    /// The sentence printed after `error: `, naming the server; `program` is who could not read an answer.
    public func message(server: String, timeout: Double, program: String) -> String {
        switch self {
        case .unresolvable(let host, let reason):
            return "cannot reach tund at \(server): cannot resolve \(host): \(reason)"
        case .unreachable(let code):
            return "cannot reach tund at \(server): \(describe(code))"
        case .connectionLost(let code):
            return "lost the connection to tund at \(server): \(describe(code))"
        case .closedEarly:
            return "tund at \(server) closed the connection before its answer was complete"
        case .timedOut:
            return "tund at \(server) did not answer within \(formatSeconds(timeout)) s"
        case .malformed(let reason):
            return "tund at \(server) sent an answer \(program) cannot read: \(reason)"
        }
    }

    private func describe(_ code: Int32) -> String { String(cString: strerror(code)) }
}
