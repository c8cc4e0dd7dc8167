import TundJSON

/// A failure reported to the runtime as the spec's error result: `{"cniVersion", "code", "msg", "details"}`
/// on standard output and a non-zero exit. Codes below 100 are the spec's; 100 and up are tund-cni's own.
/// No message ever contains the bearer token.
public struct CNIError: Error, Equatable {
    public let code: Int
    public let msg: String
    public let details: String

    public init(code: Int, msg: String, details: String = "") {
        self.code = code
        self.msg = msg
        self.details = details
    }

    // The spec's codes (SPEC.md, "Error").
    public static let incompatibleVersion = 1
    public static let invalidEnvironment = 4
    public static let ioFailure = 5
    public static let decodingFailed = 6
    public static let invalidConfig = 7
    public static let tryAgainLater = 11
    // tund-cni's codes.
    /// tund answered a device request with an error; msg and details carry tund's code and message.
    public static let tundRefused = 100
    /// CHECK found the device missing or different from the previous result.
    public static let checkFailed = 101
    /// The IPAM plugin failed without printing an error result of its own.
    public static let ipamFailed = 102

    /// The error result; `cniVersion` is the configuration's when it could be read.
    public func json(cniVersion: String) -> JSONValue {
        .object([
            ("cniVersion", .string(cniVersion)),
            ("code", .integer(Int64(code))),
            ("msg", .string(msg)),
            ("details", .string(details)),
        ])
    }
}
