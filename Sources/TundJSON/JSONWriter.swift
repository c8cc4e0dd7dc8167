/// JSON written straight into bytes, for answers made on every request (a device's counters, scraped in
/// a loop): no tree of `JSONValue`s to build and then walk. Commas are the writer's business; keys are
/// made once (`JSONKey`). Writes exactly what `JSONValue.serialized()` would for the same document.
public struct JSONWriter {
    public private(set) var bytes: [UInt8] = []
    /// A value was written at this level, so the next one needs a comma first.
    private var needsComma = false

    public init(capacity: Int = 1024) {
        bytes.reserveCapacity(capacity)
    }

    public mutating func beginObject() { open(UInt8(ascii: "{")) }
    public mutating func endObject() { close(UInt8(ascii: "}")) }
    public mutating func beginArray() { open(UInt8(ascii: "[")) }
    public mutating func endArray() { close(UInt8(ascii: "]")) }

    /// `"name":` inside an object; the value follows.
    public mutating func key(_ key: JSONKey) {
        if needsComma { bytes.append(UInt8(ascii: ",")) }
        bytes.append(contentsOf: key.bytes)
        needsComma = false
    }

    public mutating func value(_ number: UInt64) {
        separate()
        JSONValue.writeInteger(Int64(truncatingIfNeeded: number), to: &bytes)
    }

    public mutating func value(_ number: Int) {
        separate()
        JSONValue.writeInteger(Int64(number), to: &bytes)
    }

    public mutating func value(_ flag: Bool) {
        separate()
        bytes.append(contentsOf: flag ? Self.trueBytes : Self.falseBytes)
    }

    /// A string, or null.
    public mutating func value(_ text: String?) {
        separate()
        if let text { JSONValue.writeString(text, to: &bytes) } else { bytes.append(contentsOf: Self.nullBytes) }
    }

    /// A value already serialized (a rarely written part built as a `JSONValue`).
    public mutating func raw(_ serialized: [UInt8]) {
        separate()
        bytes.append(contentsOf: serialized)
    }

    private mutating func open(_ byte: UInt8) {
        separate()
        bytes.append(byte)
        needsComma = false
    }

    private mutating func close(_ byte: UInt8) {
        bytes.append(byte)
        needsComma = true
    }

    private mutating func separate() {
        if needsComma { bytes.append(UInt8(ascii: ",")) }
        needsComma = true
    }

    private static let trueBytes = Array("true".utf8), falseBytes = Array("false".utf8), nullBytes = Array("null".utf8)
}

/// An object key with its quotes, escapes and colon, made once.
public struct JSONKey: Sendable {
    let bytes: [UInt8]

    public init(_ name: String) {
        var bytes: [UInt8] = []
        JSONValue.writeString(name, to: &bytes)
        bytes.append(UInt8(ascii: ":"))
        self.bytes = bytes
    }
}
