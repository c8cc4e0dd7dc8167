/// A JSON document. Objects keep their key order so responses read in a stable, documented order.
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case integer(Int64)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([(String, JSONValue)])

    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): true
        case (.bool(let a), .bool(let b)): a == b
        case (.integer(let a), .integer(let b)): a == b
        case (.number(let a), .number(let b)): a == b
        case (.string(let a), .string(let b)): a == b
        case (.array(let a), .array(let b)): a == b
        case (.object(let a), .object(let b)): a.count == b.count && zip(a, b).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: false
        }
    }

    public subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members.first { $0.0 == key }?.1
    }

    /// The JSON type name used in error messages: "a string", "an integer", ...
    public var typeDescription: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .integer: "an integer"
        case .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }
}

public enum JSONParseError: Error, Equatable {
    case invalid(String)
}

extension JSONValue {
    /// Parses a request body strictly (see `JSONParser`); the message says what is wrong and where.
    public static func parse(_ bytes: [UInt8]) throws(JSONParseError) -> JSONValue {
        guard !bytes.isEmpty else { throw .invalid("the body is empty; expected a JSON object") }
        return try JSONParser.parse(bytes)
    }

    /// Compact UTF-8 JSON.
    public func serialized() -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(1024)
        write(to: &output)
        return output
    }

    private func write(to output: inout [UInt8]) {
        switch self {
        case .null: output.append(contentsOf: "null".utf8)
        case .bool(let value): output.append(contentsOf: (value ? "true" : "false").utf8)
        case .integer(let value): Self.writeInteger(value, to: &output)
        case .number(let value): output.append(contentsOf: (value.isFinite ? "\(value)" : "null").utf8)
        case .string(let value): Self.writeString(value, to: &output)
        case .array(let items):
            output.append(UInt8(ascii: "["))
            var first = true
            for item in items {
                if !first { output.append(UInt8(ascii: ",")) }
                first = false
                item.write(to: &output)
            }
            output.append(UInt8(ascii: "]"))
        case .object(let members):
            output.append(UInt8(ascii: "{"))
            var first = true
            for (key, value) in members {
                if !first { output.append(UInt8(ascii: ",")) }
                first = false
                Self.writeString(key, to: &output)
                output.append(UInt8(ascii: ":"))
                value.write(to: &output)
            }
            output.append(UInt8(ascii: "}"))
        }
    }

    /// Decimal digits straight into the output, without an intermediate String.
    public static func writeInteger(_ value: Int64, to output: inout [UInt8]) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { text in
            output.append(contentsOf: UnsafeBufferPointer(rebasing: text[..<formatInteger(Int(value), into: text.baseAddress!)]))
        }
    }

    /// Writes `value`'s sign and decimal digits at `text` (room for 20 bytes); how many it wrote.
    @inlinable @inline(__always)
    public static func formatInteger(_ value: Int, into text: UnsafeMutablePointer<UInt8>) -> Int {
        var count = 0
        if value < 0 {
            text[0] = UInt8(ascii: "-")
            count = 1
        }
        let magnitude = value.magnitude
        if magnitude < 10 {  // most counters of an idle device
            text[count] = UInt8(ascii: "0") + UInt8(magnitude)
            return count + 1
        }
        var digits = 1
        var rest = magnitude / 10
        while rest > 0 { digits += 1; rest /= 10 }
        rest = magnitude
        var position = count + digits
        while position > count {
            position -= 1
            text[position] = UInt8(ascii: "0") + UInt8(rest % 10)
            rest /= 10
        }
        return count + digits
    }

    /// Whether a string's bytes hold anything JSON escapes (a control character, a quote, a backslash).
    static func needsEscape(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        bytes.contains { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }
    }

    static func writeString(_ text: String, to output: inout [UInt8]) {
        output.append(UInt8(ascii: "\""))
        // Most strings (keys, names, timestamps) need no escape: copy them whole.
        var text = text
        let copied = text.withUTF8 { bytes -> Bool in
            guard !needsEscape(bytes) else { return false }
            output.append(contentsOf: bytes)
            return true
        }
        if !copied {
            for byte in text.utf8 {
                switch byte {
                case UInt8(ascii: "\""): output += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
                case UInt8(ascii: "\\"): output += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
                case 0x0a: output += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
                case 0x0d: output += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
                case 0x09: output += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
                case 0..<0x20:
                    let hex = Array("0123456789abcdef".utf8)
                    output += Array("\\u00".utf8) + [hex[Int(byte >> 4)], hex[Int(byte & 0xf)]]
                default: output.append(byte)
                }
            }
        }
        output.append(UInt8(ascii: "\""))
    }
}

/// Helpers to build objects tersely.
extension JSONValue {
    public static func optional(_ value: String?) -> JSONValue { value.map(JSONValue.string) ?? .null }
    public static func optional(_ value: Int64?) -> JSONValue { value.map(JSONValue.integer) ?? .null }
    public static func count(_ value: UInt64) -> JSONValue { .integer(Int64(truncatingIfNeeded: value)) }
}

/// Reading values back out.
extension JSONValue {
    public subscript(index: Int) -> JSONValue? {
        guard case .array(let items) = self, items.indices.contains(index) else { return nil }
        return items[index]
    }

    public var stringValue: String? { if case .string(let text) = self { text } else { nil } }
    public var integerValue: Int64? { if case .integer(let number) = self { number } else { nil } }
    public var boolValue: Bool? { if case .bool(let flag) = self { flag } else { nil } }
    public var arrayValue: [JSONValue]? { if case .array(let items) = self { items } else { nil } }
    public var objectValue: [(String, JSONValue)]? { if case .object(let members) = self { members } else { nil } }

    /// Multi-line, two-space indented JSON for people.
    public func prettyPrinted(indent: String = "") -> String {
        switch self {
        case .array(let items) where !items.isEmpty:
            let inner = indent + "  "
            return "[\n" + items.map { inner + $0.prettyPrinted(indent: inner) }.joined(separator: ",\n") + "\n\(indent)]"
        case .object(let members) where !members.isEmpty:
            let inner = indent + "  "
            return "{\n" + members.map { key, value in
                inner + String(decoding: JSONValue.string(key).serialized(), as: UTF8.self) + ": " + value.prettyPrinted(indent: inner)
            }.joined(separator: ",\n") + "\n\(indent)}"
        default:
            return String(decoding: serialized(), as: UTF8.self)
        }
    }
}
