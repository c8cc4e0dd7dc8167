import ArgumentParser
import TundClient
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
        let address: ServerAddress
        do {
            address = try ServerAddress(parsing: serverText)
        } catch {
            throw UsageError("--server \(error.text): \(error.reason)")
        }
        return APIClient(http: HTTPClient(server: address, userAgent: "tundctl/1"), token: try resolveToken(), timeout: timeout)
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
        do {
            return try BearerToken.validated(text)
        } catch {
            throw UsageError(error.message)
        }
    }

    private static func readTokenFile(_ path: String) throws -> String {
        String(decoding: try LocalFile.read(path, what: "the token file", limit: BearerToken.fileLimit), as: UTF8.self)
    }
}

/// An environment variable's value; nil when unset or empty.
func environment(_ name: String) -> String? {
    guard let value = getenv(name) else { return nil }
    let text = String(cString: value)
    return text.isEmpty ? nil : text
}
