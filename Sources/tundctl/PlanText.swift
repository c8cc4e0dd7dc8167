import TundClient
import TundJSON

/// `apply` and `diff` as people read them, and the request body they send. Pure functions of tund's
/// answer (the `PUT /devices` plan documented in api/openapi.yaml) and of the file's bytes.
enum PlanText {
    /// The plan's actions, in the order their rows are printed, each with its words for the summary.
    static let actions: [(key: String, toDo: String, done: String)] = [
        ("create", "to create", "created"),
        ("update", "to update", "updated"),
        ("recreate", "to re-create", "re-created"),
        ("delete", "to delete", "deleted"),
        ("unchanged", "unchanged", "unchanged"),
    ]

    /// One `ACTION NAME` row per device, grouped by action in the order of `actions` (within a group, in
    /// tund's order), then the summary line, then `etag: "..."` when tund sent one. `dryRun` chooses the
    /// wording (`would: 3 to create, ...` or `applied: 3 created, ...`); the answer's own `dry_run`, when
    /// present, wins, so the text never claims a change that was not made or the reverse.
    static func render(_ answer: JSONValue, dryRun: Bool, etag: String?) -> String {
        let isDryRun = answer["dry_run"]?.boolValue ?? dryRun
        var table = TextTable(["ACTION", "NAME"])
        var counts: [String] = []
        for action in actions {
            let names = answer[action.key]?.arrayValue ?? []
            for name in names { table.add([action.key, DeviceText.text(name)]) }
            counts.append("\(names.count) \(isDryRun ? action.toDo : action.done)")
        }
        var text = table.rows.isEmpty ? "no devices\n" : table.rendered()
        text += (isDryRun ? "would: " : "applied: ") + counts.joined(separator: ", ") + "\n"
        if let etag { text += "etag: \(etag)\n" }
        return text
    }

    /// What a failed apply had done before it failed, from the error's `applied` object:
    /// `applied before the failure: create a, b; delete c`, or that nothing was. Nil without `applied`.
    static func appliedBeforeFailure(_ error: JSONValue?) -> String? {
        guard let applied = error?["applied"], applied.objectValue != nil else { return nil }
        let done = actions.compactMap { action -> String? in
            let names = applied[action.key]?.arrayValue?.map { DeviceText.text($0) } ?? []
            return names.isEmpty ? nil : "\(action.key) \(names.joined(separator: ", "))"
        }
        return done.isEmpty ? "nothing was applied before the failure" : "applied before the failure: " + done.joined(separator: "; ")
    }

    /// The body of `PUT /devices` from a device file: an object with a `devices` array is sent as it is, a
    /// bare array is wrapped as `{"devices": [...]}`. Anything else is a local problem, named with `label`.
    static func requestBody(_ bytes: [UInt8], label: String) throws(LocalError) -> JSONValue {
        let document: JSONValue
        do {
            document = try JSONValue.parse(bytes)
        } catch {
            let message: String
            switch error { case .invalid(let text): message = text }
            let prefix = "the body is not valid JSON: "
            let reason = message.hasPrefix(prefix) ? String(message.dropFirst(prefix.count)) : message.replacing("the body", with: "it")
            throw LocalError("\(label) is not JSON (YAML is not read): \(reason)")
        }
        switch document {
        case .array:
            return .object([("devices", document)])
        case .object where document["devices"]?.arrayValue != nil:
            return document
        case .object where document["devices"] != nil:
            throw LocalError("in \(label), \"devices\" is \(document["devices"]!.typeDescription), not an array of devices")
        default:
            throw LocalError("\(label) holds \(document.typeDescription) without \"devices\": give {\"devices\": [...]} or an array of devices")
        }
    }

    /// An ETag as `If-Match` carries it: quoted. `42` becomes `"42"`; `"42"` and `W/"42"` stay as they are.
    static func quotedETag(_ text: String) -> String {
        let trimmed = text.trimmingWhitespace()
        if trimmed.hasPrefix("\"") || trimmed.hasPrefix("W/\"") { return trimmed }
        return "\"\(trimmed)\""
    }
}
