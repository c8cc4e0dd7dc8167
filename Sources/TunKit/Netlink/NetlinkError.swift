#if canImport(Glibc)
import Glibc
#endif

/// The kernel refused a netlink request: its errno and, when it gave one, its extended-ack text
/// (e.g. "Nexthop has invalid gateway").
public struct NetlinkError: Error, Equatable, Sendable, CustomStringConvertible {
    /// What was asked, e.g. `RTM_NEWADDR 10.10.0.1/24 dev 5`.
    public let operation: String
    public let errno: Int32
    public let kernelMessage: String?

    public init(operation: String, errno: Int32, kernelMessage: String?) {
        self.operation = operation
        self.errno = errno
        self.kernelMessage = kernelMessage
    }

    public var errnoName: String { errnoSymbol(errno) }

    public var description: String {
        let text = kernelMessage.map { ": \($0)" } ?? ""
        return "\(operation): \(errnoName) (\(String(cString: strerror(errno))))\(text)"
    }
}

/// Decodes an NLMSG_ERROR payload: (errno, extended-ack message). errno 0 is a plain ACK.
/// Layout: `nlmsgerr` {int error; nlmsghdr msg} then, when NLM_F_ACK_TLVS is set, attributes; with
/// NLM_F_CAPPED the echoed request is only its 16-byte header.
public func decodeNetlinkError(_ message: NetlinkMessage) -> (errno: Int32, kernelMessage: String?) {
    let payload = message.payload[...]
    guard payload.count >= 4 else { return (EPROTO, "short NLMSG_ERROR") }
    let code = -payload.readInteger(Int32.self, at: payload.startIndex)
    guard message.flags & 0x200 != 0, payload.count >= 20 else { return (code, nil) }  // NLM_F_ACK_TLVS
    let echoedLength = message.flags & 0x100 != 0  // NLM_F_CAPPED
        ? 16 : netlinkAlign(Int(payload.readInteger(UInt32.self, at: payload.startIndex + 4)))
    let tlvStart = payload.startIndex + 4 + echoedLength
    guard tlvStart <= payload.endIndex else { return (code, nil) }
    let attributes = NetlinkAttributes(payload[tlvStart...])
    return (code, attributes.string(1))  // NLMSGERR_ATTR_MSG
}
