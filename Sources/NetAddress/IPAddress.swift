#if canImport(Glibc)
import Glibc
#endif

/// An IPv4 or IPv6 address, stored as its network-order bytes.
public enum IPAddress: Hashable, Sendable, CustomStringConvertible {
    case v4(UInt32)  // host byte order, for arithmetic; `bytes` gives network order
    case v6([UInt8]) // always 16 bytes

    /// Parses dotted-quad IPv4 or RFC 4291 IPv6 text (the forms `inet_pton` accepts). Returns nil otherwise,
    /// also for text with anything but printable ASCII: `inet_pton` would stop at a NUL and accept a prefix.
    public init?(_ text: String) {
        guard !text.isEmpty, text.utf8.count <= 64, text.utf8.allSatisfy({ (0x21...0x7e).contains($0) }) else { return nil }
        if text.contains(":") {
            var raw = in6_addr()
            guard inet_pton(AF_INET6, text, &raw) == 1 else { return nil }
            self = .v6(withUnsafeBytes(of: &raw) { Array($0) })
        } else {
            var raw = in_addr()
            guard inet_pton(AF_INET, text, &raw) == 1 else { return nil }
            self = .v4(UInt32(bigEndian: raw.s_addr))
        }
    }

    /// Builds an address from network-order bytes: 4 for IPv4, 16 for IPv6.
    public init?(bytes: [UInt8]) {
        switch bytes.count {
        case 4: self = .v4(bytes.reduce(0) { $0 << 8 | UInt32($1) })
        case 16: self = .v6(bytes)
        default: return nil
        }
    }

    public var family: AddressFamily { if case .v4 = self { .ipv4 } else { .ipv6 } }

    /// Network-order bytes, as netlink carries them.
    public var bytes: [UInt8] {
        switch self {
        case .v4(let value): [UInt8(value >> 24), UInt8(value >> 16 & 0xff), UInt8(value >> 8 & 0xff), UInt8(value & 0xff)]
        case .v6(let bytes): bytes
        }
    }

    /// Canonical text: dotted quad, or RFC 5952 IPv6 (what `ip` prints).
    public var description: String {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        switch self {
        case .v4(let value):
            var raw = in_addr(s_addr: value.bigEndian)
            inet_ntop(AF_INET, &raw, &buffer, socklen_t(buffer.count))
        case .v6(let bytes):
            var raw = in6_addr()
            withUnsafeMutableBytes(of: &raw) { $0.copyBytes(from: bytes) }
            inet_ntop(AF_INET6, &raw, &buffer, socklen_t(buffer.count))
        }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Addresses that cannot name an interface: unspecified, loopback, multicast, IPv4 broadcast, and
    /// IPv4-mapped IPv6 (which the kernel would treat as IPv6 while it means IPv4).
    public var unusableAsInterfaceAddressReason: String? {
        switch self {
        case .v4(let value):
            if value == 0 { return "the unspecified address" }
            if value >> 24 == 127 { return "a loopback address" }
            if value >> 28 == 0xe { return "a multicast address" }
            if value == 0xffff_ffff { return "the broadcast address" }
            return nil
        case .v6(let bytes):
            if bytes.allSatisfy({ $0 == 0 }) { return "the unspecified address" }
            if bytes.dropLast().allSatisfy({ $0 == 0 }) && bytes[15] == 1 { return "the loopback address" }
            if bytes[0] == 0xff { return "a multicast address" }
            if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xff && bytes[11] == 0xff {
                return "an IPv4-mapped IPv6 address"
            }
            return nil
        }
    }
}

/// The two address families tund configures.
public enum AddressFamily: Sendable, Hashable {
    case ipv4, ipv6

    /// The kernel's AF_INET / AF_INET6.
    public var kernelValue: UInt8 { self == .ipv4 ? UInt8(AF_INET) : UInt8(AF_INET6) }
    public var bitCount: Int { self == .ipv4 ? 32 : 128 }
}

/// An IP address and a UDP/TCP port: `10.201.0.1:7000`, `[fd00::1]:7000`.
public struct SocketAddress: Hashable, Sendable, CustomStringConvertible {
    public let address: IPAddress
    public let port: UInt16

    public init(address: IPAddress, port: UInt16) {
        self.address = address
        self.port = port
    }

    /// Parses `IPv4:PORT` or `[IPv6]:PORT`; the port must be 1-65535.
    public init?(_ text: String) {
        let host: Substring, port: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            port = text[text.index(close, offsetBy: 2)...]
            guard host.contains(":") else { return nil }
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            host = text[..<colon]
            port = text[text.index(after: colon)...]
            guard !host.contains(":") else { return nil }
        }
        guard port.allSatisfy({ $0.isASCII && $0.isNumber }), let number = UInt16(port), number > 0,
              let address = IPAddress(String(host)) else { return nil }
        self.address = address
        self.port = number
    }

    public var description: String {
        address.family == .ipv4 ? "\(address):\(port)" : "[\(address)]:\(port)"
    }
}
