/// XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha): a 24-byte random nonce, safe to pick at random. WireGuard
/// uses it only for cookie replies, so each call derives its subkey and makes a context; nothing is reused.
public enum XChaChaPoly {
    /// Nonce size in bytes.
    public static let nonceCount = 24

    /// Seals `plaintext`, returning ciphertext then the 16-byte tag.
    public static func seal(_ plaintext: some ByteInput, key: some ByteInput, nonce: [UInt8],
                            aad: some ByteInput) throws(CryptoError) -> [UInt8] {
        let (cipher, counter) = try subcipher(key: key, nonce: nonce)
        return try cipher.seal(plaintext, counter: counter, aad: aad)
    }

    /// Verifies and opens `ciphertext` (tag included).
    public static func open(_ ciphertext: some ByteInput, key: some ByteInput, nonce: [UInt8],
                            aad: some ByteInput) throws(CryptoError) -> SecretBytes {
        let (cipher, counter) = try subcipher(key: key, nonce: nonce)
        return try cipher.open(ciphertext, counter: counter, aad: aad)
    }

    /// ChaCha20-Poly1305 under HChaCha20(key, nonce[0..<16]) with the nonce 4 zero bytes || nonce[16..<24],
    /// which is exactly ChaChaPoly's counter form with the last 8 bytes read little-endian.
    private static func subcipher(key: some ByteInput, nonce: [UInt8]) throws(CryptoError) -> (ChaChaPoly, UInt64) {
        guard nonce.count == nonceCount else { throw .invalidLength(expected: nonceCount, actual: nonce.count) }
        let keyCount = key.withByteInput { $0.count }
        guard keyCount == ChaChaPoly.keyCount else { throw .invalidLength(expected: ChaChaPoly.keyCount, actual: keyCount) }
        let subkey = nonce.withUnsafeBytes { HChaCha20.subkey(key: key, nonce: UnsafeRawBufferPointer(rebasing: $0[0..<16])) }
        let counter = nonce.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: 16, as: UInt64.self)) }
        return (try ChaChaPoly(key: subkey), counter)
    }
}
