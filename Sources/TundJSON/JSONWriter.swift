#if canImport(Glibc)
import Glibc
#endif

/// JSON written straight into bytes, for answers made on every request (a device's counters, scraped in
/// a loop): no tree of `JSONValue`s to build and then walk. Commas are the writer's business; keys are
/// made once (`JSONKey`). Writes exactly what `JSONValue.serialized()` would for the same document.
///
/// Noncopyable, and writing into memory of its own: a stats answer is some 60 keys and numbers, and an
/// Array's checks and a key's reference counting on each of them cost more than the bytes.
public struct JSONWriter: ~Copyable {
    private var base: UnsafeMutablePointer<UInt8>
    private var capacity: Int
    private var count = 0
    /// A value was written at this level, so the next one needs a comma first.
    fileprivate var needsComma = false

    /// Whether `base` was allocated here (else it is the caller's scratch memory).
    private var ownsBase = true

    public init(capacity: Int = 1024) {
        self.capacity = max(capacity, 64)
        base = .allocate(capacity: self.capacity)
    }

    /// Writes into `scratch` (stack memory, say) until it is full, then into memory of its own: an answer
    /// written on every request costs no allocation but the one of its `bytes`.
    public init(scratch: UnsafeMutableBufferPointer<UInt8>) {
        precondition(scratch.count >= 64)
        base = scratch.baseAddress!
        capacity = scratch.count
        ownsBase = false
    }

    deinit { if ownsBase { base.deallocate() } }

    /// How many bytes are written.
    public var writtenCount: Int { count }

    /// Whether everything written is still in the scratch memory given to `init(scratch:)`.
    public var isInScratch: Bool { !ownsBase }

    /// What has been written.
    public var bytes: [UInt8] {
        var copy: [UInt8] = []
        copy.reserveCapacity(count + 1)  // room for the newline an answer ends with
        copy.append(contentsOf: UnsafeBufferPointer(start: base, count: count))
        return copy
    }

    public mutating func beginObject() { open(UInt8(ascii: "{")) }
    public mutating func endObject() { close(UInt8(ascii: "}")) }
    public mutating func beginArray() { open(UInt8(ascii: "[")) }
    public mutating func endArray() { close(UInt8(ascii: "]")) }

    /// `"name":` inside an object; the value follows.
    public mutating func key(_ key: JSONKey) {
        reserve(key.bytes.count + 17)  // the comma, and the 16 bytes a block copy may write past the key
        if needsComma {
            base[count] = UInt8(ascii: ",")
            count += 1
        }
        copyPiece(key.bytes)
        needsComma = false
    }

    /// A counter: as `JSONValue.count` writes it, past Int64.max it reads as the Int64 it wraps to.
    public mutating func value(_ number: UInt64) {
        value(Int(Int64(truncatingIfNeeded: number)))
    }

    public mutating func value(_ number: Int) {
        separate()
        reserve(21)  // a sign and 20 digits
        writeInteger(number)
    }

    /// The number's sign and digits, in room already reserved.
    @inline(__always) fileprivate mutating func writeInteger(_ number: Int) {
        count += JSONValue.formatInteger(number, into: base + count)
    }

    public mutating func value(_ flag: Bool) {
        separate()
        let literal = flag ? Self.trueBytes.bytes : Self.falseBytes.bytes
        reserve(literal.count + 16)
        copyPiece(literal)
    }

    /// A string, or null.
    public mutating func value(_ text: String?) {
        separate()
        guard var text else { return append(Self.nullBytes.bytes) }
        // Most strings (names, modes) need no escape: copied whole, without a buffer in between.
        let copied = text.withUTF8 { utf8 -> Bool in
            guard !JSONValue.needsEscape(utf8) else { return false }
            append(UInt8(ascii: "\""))
            append(UnsafeRawBufferPointer(utf8))
            append(UInt8(ascii: "\""))
            return true
        }
        guard !copied else { return }
        var serialized: [UInt8] = []
        JSONValue.writeString(text, to: &serialized)
        serialized.withUnsafeBytes { append($0) }
    }

    /// A value already serialized (a rarely written part built as a `JSONValue`).
    public mutating func raw(_ serialized: [UInt8]) {
        separate()
        serialized.withUnsafeBytes { append($0) }
    }

    private mutating func open(_ byte: UInt8) {
        separate()
        append(byte)
        needsComma = false
    }

    private mutating func close(_ byte: UInt8) {
        append(byte)
        needsComma = true
    }

    fileprivate mutating func separate() {
        if needsComma { append(UInt8(ascii: ",")) }
        needsComma = true
    }

    @inline(__always) fileprivate mutating func reserve(_ extra: Int) {
        if count + extra > capacity { grow(to: count + extra) }
    }

    private mutating func grow(to needed: Int) {
        let larger = max(needed, capacity * 2)
        let moved = UnsafeMutablePointer<UInt8>.allocate(capacity: larger)
        moved.update(from: base, count: count)
        if ownsBase { base.deallocate() }
        base = moved
        ownsBase = true
        capacity = larger
    }

    @inline(__always) private mutating func append(_ byte: UInt8) {
        reserve(1)
        base[count] = byte
        count += 1
    }

    /// A template's piece, in room already reserved (with 16 bytes to spare), copied in 16-byte blocks: the
    /// pieces are short, and a call to memcpy for each cost more than the copy.
    @inline(__always) fileprivate mutating func copyPiece(_ piece: UnsafeRawBufferPointer) {
        guard let source = piece.baseAddress else { return }
        let destination = UnsafeMutableRawPointer(base + count)
        var offset = 0
        while offset < piece.count {
            destination.storeBytes(of: source.loadUnaligned(fromByteOffset: offset, as: SIMD16<UInt8>.self), toByteOffset: offset, as: SIMD16<UInt8>.self)
            offset += 16
        }
        count += piece.count
    }

    @inline(__always) private mutating func append(_ source: UnsafeRawBufferPointer) {
        reserve(source.count)
        if let start = source.baseAddress { memcpy(base + count, start, source.count) }
        count += source.count
    }

    private static let trueBytes = JSONKey(literal: "true"), falseBytes = JSONKey(literal: "false"), nullBytes = JSONKey(literal: "null")
}

/// An object key with its quotes, escapes and colon, made once and kept for the life of the program
/// (keys are static): writing one is a copy of its bytes, with no reference to count.
public struct JSONKey: @unchecked Sendable {  // its bytes are never written after init
    let bytes: UnsafeRawBufferPointer

    public init(_ name: String) {
        var serialized: [UInt8] = []
        JSONValue.writeString(name, to: &serialized)
        serialized.append(UInt8(ascii: ":"))
        bytes = immortalPadded(serialized)
    }

    /// Bytes written as they are (`true`, `null`).
    init(literal: String) {
        bytes = immortalPadded(Array(literal.utf8))
    }
}

/// `bytes` in memory never freed, followed by 16 bytes to spare so that it can be copied in 16-byte
/// blocks (`copyPiece`).
private func immortalPadded(_ bytes: [UInt8]) -> UnsafeRawBufferPointer {
    let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count + 16, alignment: 16)
    copy.initializeMemory(as: UInt8.self, repeating: 0)
    copy.copyBytes(from: bytes)
    return UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(copy)[..<bytes.count])
}

/// A run of object members whose keys and nesting never change (a queue's counters), made once as the
/// text between its numbers: writing it is a copy of each piece and one number after it, with no key or
/// comma to work out per member.
public struct JSONTemplate: @unchecked Sendable {  // its bytes are never written after init
    /// `pieces[i]` comes just before the number `values[sources[i]]`: the comma, the key, and any object
    /// it opens or closes. Each is stored with 16 bytes to spare, so it can be copied in 16-byte blocks.
    let pieces: [UnsafeRawBufferPointer]
    let sources: [Int]
    /// What follows the last number (closing braces).
    let tail: UnsafeRawBufferPointer
    /// The most a written run can take: every piece and a 20-digit number after each.
    let maximumLength: Int

    /// `pieces` as serialized JSON text; the first starts without a comma (the writer adds one when needed).
    public init(pieces: [(text: String, source: Int)], tail: String) {
        self.pieces = pieces.map { immortalPadded(Array($0.text.utf8)) }
        sources = pieces.map(\.source)
        self.tail = immortalPadded(Array(tail.utf8))
        maximumLength = 1 + self.pieces.reduce(0) { $0 + $1.count + 21 } + self.tail.count
    }
}

extension JSONWriter {
    /// The template's members inside the current object, `values[template.sources[i]]` after piece `i`.
    public mutating func members(_ template: JSONTemplate, values: UnsafeBufferPointer<UInt64>) {
        separate()
        reserve(template.maximumLength + 16)
        template.pieces.withUnsafeBufferPointer { pieces in
            template.sources.withUnsafeBufferPointer { sources in
                for index in 0..<pieces.count {
                    copyPiece(pieces[index])
                    writeInteger(Int(Int64(truncatingIfNeeded: values[sources[index]])))
                }
            }
        }
        copyPiece(template.tail)
        needsComma = true
    }
}
