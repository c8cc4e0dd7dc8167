import TundJSON

/// The spec versions tund-cni speaks. Results are written in the configuration's version: the only
/// difference that matters here is that before 1.0.0 every IP carried a `version` ("4" or "6").
public enum CNIVersion {
    public static let current = "1.0.0"
    public static let supported = ["0.3.0", "0.3.1", "0.4.0", "1.0.0"]

    /// The answer to VERSION.
    public static var versionResult: JSONValue {
        .object([("cniVersion", .string(current)), ("supportedVersions", .array(supported.map(JSONValue.string)))])
    }

    /// CHECK exists from 0.4.0 on.
    public static func hasCheck(_ version: String) -> Bool { version == "0.4.0" || version == "1.0.0" }

    /// Whether IPs in a result carry the `version` field (removed in 1.0.0).
    public static func ipsCarryVersion(_ version: String) -> Bool { version != "1.0.0" }
}
