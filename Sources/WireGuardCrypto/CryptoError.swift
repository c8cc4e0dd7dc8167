/// Why a WireGuard primitive refused: each case is something a caller can act on, never secret data.
public enum CryptoError: Error, Equatable, Sendable {
    /// An OpenSSL call failed where it should not (out of memory, a missing algorithm); names the function.
    case openSSL(function: String)
    /// The AEAD tag did not verify: the ciphertext, its associated data, the key or the nonce differ.
    case authenticationFailed
    /// A key, nonce or message had the wrong number of bytes.
    case invalidLength(expected: Int, actual: Int)
    /// The caller's buffer cannot hold the result (a sealed message needs 16 bytes for the tag).
    case bufferTooSmall(needed: Int, available: Int)
    /// X25519 gave the all-zero shared secret: the peer sent a low-order point, so the exchange proves nothing.
    case zeroSharedSecret
    /// The text is not the base64 of a 32-byte key.
    case invalidBase64Key
}
