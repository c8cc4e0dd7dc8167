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
    public var names: Set<String>
    /// The port it listens on: a Host or Origin with another port is foreign.
    public var port: Int

    public init(names: Set<String>, port: Int) {
        self.names = names
        self.port = port
    }

    /// loopback's names and the listen address's own.
    public static func loopback(listeningOn host: String, port: Int) -> HostPolicy {
        HostPolicy(names: ["localhost", "127.0.0.1", "[::1]", host.lowercased()], port: port)
    }
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
            if asciiCaseInsensitiveEqual(name, "host") {
                hostCount += 1
                if host == nil { host = value.trimmingSpaces() }
            } else if asciiCaseInsensitiveEqual(name, "content-length") {
                lengths += value.split(separator: ",").map { $0.trimmingSpaces() }
            } else if asciiCaseInsensitiveEqual(name, "transfer-encoding") {
                transferEncoding = true
            } else if asciiCaseInsensitiveEqual(name, "origin") {
                origin = String(value.trimmingSpaces())
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
        let bytes = authority.utf8
        let host: Substring.UTF8View
        let port: Substring.UTF8View?
        if bytes.first == UInt8(ascii: "[") {
            guard let close = bytes.firstIndex(of: UInt8(ascii: "]")) else { return false }
            host = authority[...close].utf8
            let rest = authority[bytes.index(after: close)...].utf8
            guard rest.isEmpty || rest.first == UInt8(ascii: ":") else { return false }
            port = rest.isEmpty ? nil : rest.dropFirst()
        } else if let colon = bytes.lastIndex(of: UInt8(ascii: ":")) {
            host = authority[..<colon].utf8
            port = authority[bytes.index(after: colon)...].utf8
        } else {
            host = authority.utf8
            port = nil
        }
        // A handful of names, compared without regard to case: cheaper than lowering and hashing.
        guard names.contains(where: { asciiCaseInsensitiveEqual(Substring(host), Substring($0)) }) else { return false }
        guard let port else { return defaultPort.map { $0 == self.port } ?? true }
        return Int(Substring(port)) == self.port
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
