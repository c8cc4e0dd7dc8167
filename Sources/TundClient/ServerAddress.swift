/// Where tund listens, as given by tundctl's `--server` or `TUND_SERVER`, or tund-cni's `server`.
///
/// Accepted forms:
/// - `http://HOST[:PORT][/PREFIX]` where HOST is an IPv4 address, `[IPv6]`, or a name such as
///   `localhost` (resolved with getaddrinfo); PORT defaults to 80;
/// - `HOST:PORT` without a scheme, taken as `http://HOST:PORT`;
/// - `unix:/PATH/TO.sock` (or `unix:///PATH`) for a Unix domain socket.
///
/// `https` is refused: the clients speak plain HTTP only.
public struct ServerAddress: Equatable, CustomStringConvertible {
    public enum Endpoint: Equatable {
        case tcp(host: String, port: UInt16)
        case unix(path: String)
    }

    public let endpoint: Endpoint
    /// A path prefix put before every API path (`http://proxy/tund` gives `/tund/devices`); "" for none.
    public let pathPrefix: String
    /// The text it was parsed from, for messages.
    public let description: String

    public static let defaultURL = "http://127.0.0.1:8080"

    /// The value of the `Host` header.
    public var hostHeader: String {
        switch endpoint {
        case .unix: return "localhost"
        case .tcp(let host, let port):
            let bracketed = host.contains(":") ? "[\(host)]" : host
            return port == 80 ? bracketed : "\(bracketed):\(port)"
        }
    }

    public init(parsing text: String) throws(ServerAddressError) {
        description = text
        if text.hasPrefix("unix:") {
            var path = Substring(text.dropFirst("unix:".count))
            if path.hasPrefix("//") { path = path.dropFirst(2) }
            guard path.hasPrefix("/"), path.count > 1 else {
                throw ServerAddressError(text: text, reason: "a Unix socket is given as unix:/absolute/path.sock")
            }
            endpoint = .unix(path: String(path))
            pathPrefix = ""
            return
        }
        var rest = Substring(text)
        if let schemeEnd = rest.firstRange(of: "://") {
            let scheme = rest[..<schemeEnd.lowerBound].lowercased()
            guard scheme == "http" else {
                throw ServerAddressError(text: text, reason: "only http:// and unix: are supported, not \(scheme)://")
            }
            rest = rest[schemeEnd.upperBound...]
        }
        let authority: Substring
        if let slash = rest.firstIndex(of: "/") {
            authority = rest[..<slash]
            var prefix = String(rest[slash...])
            while prefix.hasSuffix("/") { prefix.removeLast() }
            pathPrefix = prefix
        } else {
            authority = rest
            pathPrefix = ""
        }
        guard !authority.contains("@") else {
            throw ServerAddressError(text: text, reason: "user information in the URL is not supported; give the token separately")
        }
        let host: Substring
        let portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else {
                throw ServerAddressError(text: text, reason: "an IPv6 address must be closed with ]")
            }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if after.isEmpty {
                portText = nil
            } else if after.hasPrefix(":") {
                portText = after.dropFirst()
            } else {
                throw ServerAddressError(text: text, reason: "expected :PORT after the IPv6 address")
            }
        } else if let colon = authority.lastIndex(of: ":") {
            host = authority[..<colon]
            portText = authority[authority.index(after: colon)...]
            guard !host.contains(":") else {
                throw ServerAddressError(text: text, reason: "write an IPv6 address in brackets, like http://[::1]:8080")
            }
        } else {
            host = authority
            portText = nil
        }
        guard !host.isEmpty else { throw ServerAddressError(text: text, reason: "the host is missing") }
        var port: UInt16 = 80
        if let portText {
            guard let parsed = UInt16(portText), parsed > 0 else {
                throw ServerAddressError(text: text, reason: "the port must be a number from 1 to 65535")
            }
            port = parsed
        }
        endpoint = .tcp(host: String(host), port: port)
    }
}

/// A server address that cannot be used; `reason` says why without repeating the address.
public struct ServerAddressError: Error, Equatable {
    public let text: String
    public let reason: String
}
