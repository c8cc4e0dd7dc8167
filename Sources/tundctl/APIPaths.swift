import PercentEncoding

/// The API's paths, with every variable part percent-encoded as one path segment
/// (`10.0.0.5/24` becomes `10.0.0.5%2F24`, so a prefix length never splits the path).
enum APIPaths {
    static let devices = "/devices"
    static let events = "/events"

    /// `PUT /devices`: the whole set; `dry_run=true` only plans, `recreate=true` allows re-creating.
    static func deviceSet(dryRun: Bool, recreate: Bool) -> String {
        var query: [String] = []
        if dryRun { query.append("dry_run=true") }
        if recreate { query.append("recreate=true") }
        return devices + (query.isEmpty ? "" : "?" + query.joined(separator: "&"))
    }

    /// `GET /devices?netns=NAME`: one namespace's devices ("" for tund's own); nil lists all.
    static func devices(netns: String?) -> String { netns.map { devices + "?netns=" + segment($0) } ?? devices }

    static func device(_ name: String) -> String { "/devices/\(segment(name))" }
    static func stats(_ name: String) -> String { device(name) + "/stats" }
    static func addresses(_ name: String) -> String { device(name) + "/addresses" }
    static func address(_ name: String, _ address: String) -> String { addresses(name) + "/" + segment(address) }
    static func routes(_ name: String) -> String { device(name) + "/routes" }
    static func route(_ name: String, id: String) -> String { routes(name) + "/" + segment(id) }

    static func capture(_ name: String, count: Int?, timeout: Int?) -> String {
        var query: [String] = []
        if let count { query.append("count=\(count)") }
        if let timeout { query.append("timeout=\(timeout)") }
        return device(name) + "/capture" + (query.isEmpty ? "" : "?" + query.joined(separator: "&"))
    }

    /// A path segment, percent-encoded.
    static func segment(_ text: String) -> String { percentEncode(text) }
}
