/// Why a request is refused from its head alone, before its body is read or it is routed.
public enum HeadRejection: Equatable, Sendable {
    /// Content-Length with Transfer-Encoding, or Content-Lengths that disagree (RFC 9112 §6.1, §6.3): two
    /// parsers could split the stream into different requests, so the connection is closed.
    case ambiguousFraming(String)
    /// A header line that a strict parser must refuse (RFC 9112 §5.1): whitespace before the colon, an
    /// empty field name.
    case malformedHeader(String)
    /// HTTP/1.1 without a Host, or with more than one (RFC 9112 §3.2).
    case invalidHost(String)
    /// A Host that does not name this server: the mark of DNS rebinding.
    case foreignHost(String)
    /// A browser request from a page that is not this server's own origin.
    case foreignOrigin(String)
}

/// Which names a request may address the server by. Without a token, a browser on the same host is a
/// client too: a page from `rebind.attacker.example` whose name resolves to 127.0.0.1 reaches the API
/// unless the Host is checked, and a page from any origin can send requests unless Origin is.
public struct HostPolicy: Sendable, Equatable {
    /// Host names (lower case, IPv6 in brackets) the server answers to.
    public var names: Set<String> { didSet { nameBytes = Self.bytes(names) } }
    /// `names` as bytes, for comparing on every request.
    private var nameBytes: [[UInt8]]
    /// The port it listens on: a Host or Origin with another port is foreign.
    public var port: Int

    public init(names: Set<String>, port: Int) {
        self.names = names
        nameBytes = Self.bytes(names)
        self.port = port
    }

    private static func bytes(_ names: Set<String>) -> [[UInt8]] { names.map { Array($0.utf8) } }

    /// loopback's names and the listen address's own.
    public static func loopback(listeningOn host: String, port: Int) -> HostPolicy {
        HostPolicy(names: ["localhost", "127.0.0.1", "[::1]", host.lowercased()], port: port)
    }
}

/// The header names the head check looks at, told apart on the bytes (every request has a few headers).
enum HeaderName {
    case host, contentLength, transferEncoding, origin, other

    init(_ name: String) {
        var name = name
        self = name.withUTF8 { bytes in
            switch bytes.count {
            case 4 where equalsIgnoringASCIICase(bytes, "host"): .host
            case 6 where equalsIgnoringASCIICase(bytes, "origin"): .origin
            case 14 where equalsIgnoringASCIICase(bytes, "content-length"): .contentLength
            case 17 where equalsIgnoringASCIICase(bytes, "transfer-encoding"): .transferEncoding
            default: .other
            }
        }
    }
}

/// True when `bytes` spell `name` in any ASCII case.
private func equalsIgnoringASCIICase(_ bytes: UnsafeBufferPointer<UInt8>, _ name: StaticString) -> Bool {
    equalIgnoringASCIICase(bytes, UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount))
}

enum RequestHead {
    /// Checks the header lines as sent (duplicates kept, names as written). `policy` nil: any Host will do
    /// (a Unix socket, or a token guards the API).
    static func check(_ headers: [(name: String, value: String)], http10: Bool, policy: HostPolicy?) -> HeadRejection? {
        var lengths: [Substring] = []
        var host: Substring?
        var hostCount = 0
        var transferEncoding = false
        var origin: String?
        for (name, value) in headers {
            if name.isEmpty { return .malformedHeader("a header line has an empty field name") }
            if name.utf8.contains(where: { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }) {
                return .malformedHeader("whitespace in or before the colon of the header field name \"\(name.prefix(64))\"")
            }
            switch HeaderName(name) {
            case .host:
                hostCount += 1
                if host == nil { host = value.trimmingSpaces() }
            case .contentLength: lengths += value.split(separator: ",").map { $0.trimmingSpaces() }
            case .transferEncoding: transferEncoding = true
            case .origin: origin = String(value.trimmingSpaces())
            case .other: break
            }
        }
        if transferEncoding && !lengths.isEmpty {
            return .ambiguousFraming("both Content-Length and Transfer-Encoding frame the body")
        }
        if lengths.count > 1 && Set(lengths).count > 1 {
            return .ambiguousFraming("Content-Length values disagree: \(lengths.prefix(4).joined(separator: ", "))")
        }
        if hostCount > 1 { return .invalidHost("the request has \(hostCount) Host headers") }
        if host == nil && !http10 { return .invalidHost("an HTTP/1.1 request needs a Host header") }
        guard let policy else { return nil }
        if let host, !policy.admits(authority: host, defaultPort: nil) {
            return .foreignHost("Host \(host.prefix(64)) does not name this server")
        }
        if let origin, !policy.admits(origin: origin) {
            return .foreignOrigin("requests from the web origin \(origin.prefix(64)) are not accepted")
        }
        return nil
    }
}

extension HostPolicy {
    /// `host[:port]`; a missing port is `defaultPort`, or any when that is nil (a Host may omit it).
    func admits(authority: Substring, defaultPort: Int?) -> Bool {
        var authority = authority
        return authority.withUTF8 { bytes in
            var hostEnd = bytes.count
            var portStart: Int?
            if bytes.first == UInt8(ascii: "[") {
                guard let close = bytes.firstIndex(of: UInt8(ascii: "]")) else { return false }
                hostEnd = close + 1
                guard hostEnd == bytes.count || bytes[hostEnd] == UInt8(ascii: ":") else { return false }
                if hostEnd < bytes.count { portStart = hostEnd + 1 }
            } else if let colon = bytes.lastIndex(of: UInt8(ascii: ":")) {
                hostEnd = colon
                portStart = colon + 1
            }
            let host = UnsafeBufferPointer(rebasing: bytes[..<hostEnd])
            // A handful of names, compared as bytes without regard to case: cheaper than lowering and hashing.
            guard nameBytes.contains(where: { $0.withUnsafeBufferPointer { equalIgnoringASCIICase($0, host) } }) else { return false }
            guard let portStart else { return defaultPort.map { $0 == self.port } ?? true }
            let digits = UnsafeBufferPointer(rebasing: bytes[portStart...])
            guard !digits.isEmpty, digits.count <= 5, digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return false }
            return digits.reduce(0) { $0 * 10 + Int($1 - 0x30) } == self.port
        }
    }

    /// `scheme://host[:port]`, the default port being the scheme's. "null" (a sandboxed or file page) is foreign.
    func admits(origin: String) -> Bool {
        let lowered = origin.lowercased()
        for (scheme, port) in [("http://", 80), ("https://", 443)] where lowered.hasPrefix(scheme) {
            return admits(authority: lowered.dropFirst(scheme.count), defaultPort: port)
        }
        return false
    }
}
