import WireGuardCrypto

/// Why bytes are not a WireGuard message of the expected kind.
public enum MessageError: Error, Equatable, Sendable {
    /// The first 4 bytes (type, then 3 reserved zero bytes) are not this message's type.
    case wrongType(expected: UInt32, actual: UInt32)
    /// Handshake messages have one fixed size each; a transport message needs at least its header and a tag.
    case wrongSize(expected: Int, actual: Int)
}

/// The four message types, the first little-endian 32-bit word of every message.
public enum MessageType: UInt32, Sendable {
    case initiation = 1
    case response = 2
    case cookieReply = 3
    case transportData = 4

    /// The type of the message in `bytes`, nil when it is none of the four.
    public init?(of bytes: some ByteInput) {
        guard let raw = bytes.withByteInput({ $0.count >= 4 ? UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self)) : nil }),
              let type = MessageType(rawValue: raw) else { return nil }
        self = type
    }
}

/// Reads and writes little-endian fields at fixed offsets: the only layout WireGuard messages have.
struct MessageCodec {
    var bytes: [UInt8]

    init(count: Int, type: MessageType) {
        bytes = [UInt8](repeating: 0, count: count)
        put(type.rawValue, at: 0)
    }

    init(parsing input: some ByteInput, count: Int, type: MessageType) throws(MessageError) {
        bytes = input.withByteInput { Array($0) }
        guard bytes.count == count else { throw .wrongSize(expected: count, actual: bytes.count) }
        let actual = uint32(at: 0)
        guard actual == type.rawValue else { throw .wrongType(expected: type.rawValue, actual: actual) }
    }

    mutating func put(_ value: UInt32, at offset: Int) {
        bytes.withUnsafeMutableBytes { $0.storeBytes(of: value.littleEndian, toByteOffset: offset, as: UInt32.self) }
    }

    mutating func put(_ field: [UInt8], at offset: Int) {
        bytes.replaceSubrange(offset..<(offset + field.count), with: field)
    }

    func uint32(at offset: Int) -> UInt32 {
        bytes.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: UInt32.self)) }
    }

    func field(at offset: Int, count: Int) -> [UInt8] {
        Array(bytes[offset..<(offset + count)])
    }
}

/// Message type 1, 148 bytes: type, sender index, unencrypted ephemeral, encrypted static (32 + tag),
/// encrypted TAI64N timestamp (12 + tag), MAC1, MAC2.
public struct InitiationMessage: Equatable, Sendable {
    public static let count = 148
    /// Where MAC1 starts: it covers every byte before it (msg_α).
    public static let mac1Offset = 116

    public var senderIndex: UInt32
    public var ephemeral: [UInt8]
    public var encryptedStatic: [UInt8]
    public var encryptedTimestamp: [UInt8]
    public var mac1 = [UInt8](repeating: 0, count: 16)
    public var mac2 = [UInt8](repeating: 0, count: 16)

    init(senderIndex: UInt32, ephemeral: [UInt8], encryptedStatic: [UInt8], encryptedTimestamp: [UInt8]) {
        self.senderIndex = senderIndex
        self.ephemeral = ephemeral
        self.encryptedStatic = encryptedStatic
        self.encryptedTimestamp = encryptedTimestamp
    }

    /// Parses 148 bytes of type 1. The MACs are read, not checked: that is `CookieChecker`'s job.
    public init(bytes: some ByteInput) throws(MessageError) {
        let codec = try MessageCodec(parsing: bytes, count: Self.count, type: .initiation)
        senderIndex = codec.uint32(at: 4)
        ephemeral = codec.field(at: 8, count: 32)
        encryptedStatic = codec.field(at: 40, count: 48)
        encryptedTimestamp = codec.field(at: 88, count: 28)
        mac1 = codec.field(at: Self.mac1Offset, count: 16)
        mac2 = codec.field(at: Self.mac1Offset + 16, count: 16)
    }

    /// The 148 bytes on the wire.
    public var bytes: [UInt8] {
        var codec = MessageCodec(count: Self.count, type: .initiation)
        codec.put(senderIndex, at: 4)
        codec.put(ephemeral, at: 8)
        codec.put(encryptedStatic, at: 40)
        codec.put(encryptedTimestamp, at: 88)
        codec.put(mac1, at: Self.mac1Offset)
        codec.put(mac2, at: Self.mac1Offset + 16)
        return codec.bytes
    }
}

/// Message type 2, 92 bytes: type, sender index, receiver index, unencrypted ephemeral, encrypted empty
/// payload (the tag alone), MAC1, MAC2.
public struct ResponseMessage: Equatable, Sendable {
    public static let count = 92
    /// Where MAC1 starts: it covers every byte before it (msg_α).
    public static let mac1Offset = 60

    public var senderIndex: UInt32
    public var receiverIndex: UInt32
    public var ephemeral: [UInt8]
    public var encryptedNothing: [UInt8]
    public var mac1 = [UInt8](repeating: 0, count: 16)
    public var mac2 = [UInt8](repeating: 0, count: 16)

    init(senderIndex: UInt32, receiverIndex: UInt32, ephemeral: [UInt8], encryptedNothing: [UInt8]) {
        self.senderIndex = senderIndex
        self.receiverIndex = receiverIndex
        self.ephemeral = ephemeral
        self.encryptedNothing = encryptedNothing
    }

    /// Parses 92 bytes of type 2. The MACs are read, not checked.
    public init(bytes: some ByteInput) throws(MessageError) {
        let codec = try MessageCodec(parsing: bytes, count: Self.count, type: .response)
        senderIndex = codec.uint32(at: 4)
        receiverIndex = codec.uint32(at: 8)
        ephemeral = codec.field(at: 12, count: 32)
        encryptedNothing = codec.field(at: 44, count: 16)
        mac1 = codec.field(at: Self.mac1Offset, count: 16)
        mac2 = codec.field(at: Self.mac1Offset + 16, count: 16)
    }

    /// The 92 bytes on the wire.
    public var bytes: [UInt8] {
        var codec = MessageCodec(count: Self.count, type: .response)
        codec.put(senderIndex, at: 4)
        codec.put(receiverIndex, at: 8)
        codec.put(ephemeral, at: 12)
        codec.put(encryptedNothing, at: 44)
        codec.put(mac1, at: Self.mac1Offset)
        codec.put(mac2, at: Self.mac1Offset + 16)
        return codec.bytes
    }
}

/// Message type 3, 64 bytes: type, receiver index, 24-byte nonce, encrypted cookie (16 + tag).
public struct CookieReplyMessage: Equatable, Sendable {
    public static let count = 64

    public var receiverIndex: UInt32
    public var nonce: [UInt8]
    public var encryptedCookie: [UInt8]

    init(receiverIndex: UInt32, nonce: [UInt8], encryptedCookie: [UInt8]) {
        self.receiverIndex = receiverIndex
        self.nonce = nonce
        self.encryptedCookie = encryptedCookie
    }

    /// Parses 64 bytes of type 3.
    public init(bytes: some ByteInput) throws(MessageError) {
        let codec = try MessageCodec(parsing: bytes, count: Self.count, type: .cookieReply)
        receiverIndex = codec.uint32(at: 4)
        nonce = codec.field(at: 8, count: 24)
        encryptedCookie = codec.field(at: 32, count: 32)
    }

    /// The 64 bytes on the wire.
    public var bytes: [UInt8] {
        var codec = MessageCodec(count: Self.count, type: .cookieReply)
        codec.put(receiverIndex, at: 4)
        codec.put(nonce, at: 8)
        codec.put(encryptedCookie, at: 32)
        return codec.bytes
    }
}

/// The 16-byte header of message type 4 (type, receiver index, little-endian 64-bit counter); the sealed
/// packet follows it. Read and written in the caller's packet buffer, so the data path allocates nothing.
public struct TransportHeader: Equatable, Sendable {
    public static let count = 16
    /// The smallest transport message: a header and the tag of an empty (keepalive) packet.
    public static let minimumMessageCount = count + ChaChaPoly.tagCount

    public var receiverIndex: UInt32
    public var counter: UInt64

    public init(receiverIndex: UInt32, counter: UInt64) {
        self.receiverIndex = receiverIndex
        self.counter = counter
    }

    /// Reads the header at the start of a received message.
    public init(reading message: UnsafeRawBufferPointer) throws(MessageError) {
        guard message.count >= Self.minimumMessageCount else {
            throw .wrongSize(expected: Self.minimumMessageCount, actual: message.count)
        }
        let type = UInt32(littleEndian: message.loadUnaligned(fromByteOffset: 0, as: UInt32.self))
        guard type == MessageType.transportData.rawValue else {
            throw .wrongType(expected: MessageType.transportData.rawValue, actual: type)
        }
        receiverIndex = UInt32(littleEndian: message.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
        counter = UInt64(littleEndian: message.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
    }

    /// Writes the header into the first 16 bytes of `message`.
    public func write(into message: UnsafeMutableRawBufferPointer) {
        precondition(message.count >= Self.count)
        message.storeBytes(of: MessageType.transportData.rawValue.littleEndian, toByteOffset: 0, as: UInt32.self)
        message.storeBytes(of: receiverIndex.littleEndian, toByteOffset: 4, as: UInt32.self)
        message.storeBytes(of: counter.littleEndian, toByteOffset: 8, as: UInt64.self)
    }
}
