import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif

/// The options every command takes: where tund is, the token to show it, and the output format.
///
/// Each comes from its flag, else from the environment: `--server` / `TUND_SERVER` (default
/// `http://127.0.0.1:8080`), `--token` / `TUND_TOKEN`, `--token-file` / `TUND_TOKEN_FILE`. A flag always
/// wins over the environment; `--token` and `--token-file` together are refused, and so is the same pair
/// in the environment. The token is sent as `Authorization: Bearer <token>`.
struct GlobalOptions: ParsableArguments {
    @Option(help: ArgumentHelp(
        "tund's address: http://HOST:PORT, http://[IPv6]:PORT or unix:/PATH. Default: $TUND_SERVER, else \(ServerAddress.defaultURL).",
        valueName: "url"))
    var server: String?

    @Option(help: ArgumentHelp(
        "Bearer token for tund's API. Default: $TUND_TOKEN. (A flag is visible to other local users in ps; prefer --token-file.)",
        valueName: "token"))
    var token: String?

    @Option(name: .customLong("token-file"), help: ArgumentHelp(
        "Read the bearer token from this file (surrounding whitespace is ignored). Default: $TUND_TOKEN_FILE.",
        valueName: "path"))
    var tokenFile: String?

    @Flag(help: "Print JSON instead of tables: one document per line, as tund sent it.")
    var json = false

    /// The server as given (flag, environment or default), for messages.
    var serverText: String { server ?? environment("TUND_SERVER") ?? ServerAddress.defaultURL }

    func validate() throws {
        if token != nil && tokenFile != nil { throw ValidationError("give --token or --token-file, not both") }
    }

    /// A client for the chosen server and token; `timeout` bounds connecting and each read (0: none).
    func makeClient(timeout: Double) throws -> APIClient {
        let address = try ServerAddress(parsing: serverText)
        return APIClient(http: HTTPClient(server: address), token: try resolveToken(), timeout: timeout)
    }

    private func resolveToken() throws -> String? {
        let text: String
        if let token {
            text = token
        } else if let tokenFile {
            text = try Self.readTokenFile(tokenFile)
        } else {
            let fromEnvironment = environment("TUND_TOKEN")
            let fileFromEnvironment = environment("TUND_TOKEN_FILE")
            if fromEnvironment != nil && fileFromEnvironment != nil {
                throw UsageError("TUND_TOKEN and TUND_TOKEN_FILE are both set; unset one")
            }
            if let fromEnvironment {
                text = fromEnvironment
            } else if let fileFromEnvironment {
                text = try Self.readTokenFile(fileFromEnvironment)
            } else {
                return nil
            }
        }
        let trimmed = text.trimmingWhitespace()
        guard !trimmed.isEmpty else { throw UsageError("the token is empty") }
        guard trimmed.utf8.allSatisfy({ (0x21...0x7e).contains($0) }) else {
            throw UsageError("the token must be printable ASCII without spaces")
        }
        return trimmed
    }

    private static func readTokenFile(_ path: String) throws -> String {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw LocalError("cannot read the token file \(path): \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        var contents: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw LocalError("cannot read the token file \(path): \(String(cString: strerror(errno)))")
            }
            if count == 0 { break }
            contents += chunk[..<count]
            guard contents.count <= 64 * 1024 else { throw LocalError("the token file \(path) is larger than 64 KiB") }
        }
        return String(decoding: contents, as: UTF8.self)
    }
}

/// An environment variable's value; nil when unset or empty.
func environment(_ name: String) -> String? {
    guard let value = getenv(name) else { return nil }
    let text = String(cString: value)
    return text.isEmpty ? nil : text
}
