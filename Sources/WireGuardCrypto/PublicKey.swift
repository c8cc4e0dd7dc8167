import COpenSSL

/// A Curve25519 public key (32 bytes), as WireGuard configurations print it: standard base64, 44 characters.
public struct PublicKey: Hashable, Sendable, CustomStringConvertible {
    /// Key size in bytes.
    public static let count = 32

    /// The 32 bytes.
    public let bytes: [UInt8]

    /// A key from its 32 bytes.
    public init(bytes: [UInt8]) throws(CryptoError) {
        guard bytes.count == Self.count else { throw .invalidLength(expected: Self.count, actual: bytes.count) }
        self.bytes = bytes
    }

    /// A key from the base64 text `wg pubkey` prints.
    public init(base64 text: String) throws(CryptoError) {
        bytes = try Base64Key.decode(text).withUnsafeBytes { Array($0) }
    }

    /// The base64 text, as `wg` prints it.
    public var base64: String { Base64Key.encode(bytes) }

    public var description: String { base64 }
}

/// Base64 of 32-byte keys through OpenSSL's EVP_EncodeBlock/EVP_DecodeBlock, held to the one canonical
/// form `wg` writes (44 characters, one '=', zero padding bits), since EVP_DecodeBlock alone also accepts
/// whitespace and leaves the padding bytes in its output.
public enum Base64Key {
    static let textCount = 44

    /// The canonical text of `bytes` (32 of them).
    public static func encode(_ bytes: some ByteInput) -> String {
        var text = [UInt8](repeating: 0, count: textCount + 1)
        let written = bytes.withByteInput { bytes in
            precondition(bytes.count == PublicKey.count)
            return EVP_EncodeBlock(&text, bytes.baseAddress!.assumingMemoryBound(to: UInt8.self), Int32(bytes.count))
        }
        precondition(written == textCount)
        return String(decoding: text[0..<textCount], as: UTF8.self)
    }

    /// The 32 bytes of a canonical base64 key, as a secret since private keys are read this way too.
    public static func decode(_ text: String) throws(CryptoError) -> SecretBytes {
        var input = Array(text.utf8)
        defer { for index in input.indices { input[index] = 0 } }
        guard input.count == textCount, input[43] == UInt8(ascii: "="), input[42] != UInt8(ascii: "=") else {
            throw .invalidBase64Key
        }
        var decoded = [UInt8](repeating: 0, count: 33)
        defer { for index in decoded.indices { decoded[index] = 0 } }
        // EVP_DecodeBlock returns 33 for 44 characters (it counts the padding as a zero byte).
        guard EVP_DecodeBlock(&decoded, input, Int32(input.count)) == 33 else { throw .invalidBase64Key }
        let key = SecretBytes(copying: decoded[0..<32])
        // Canonical only: text whose unused bits are set decodes to the same key, and would then not
        // match the same key written by wg or by this program.
        guard Array(encode(key).utf8) == input else { throw .invalidBase64Key }
        return key
    }
}
