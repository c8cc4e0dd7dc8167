import WireGuardCrypto

/// Where the handshake gets its randomness: ephemeral keys, cookie secrets and nonces, session indices.
/// Injected so that a known-answer test can fix every "random" value; production uses `SystemRandom`.
public protocol RandomSource {
    /// A fresh ephemeral key pair (the whitepaper's DH-GENERATE).
    func makeEphemeralKey() throws(CryptoError) -> X25519.PrivateKey
    /// Fills `buffer` with random bytes.
    func fill(_ buffer: UnsafeMutableRawBufferPointer)
}

extension RandomSource {
    /// A random 32-bit session index. Uniqueness among live sessions is the caller's index table's job
    /// (it alone sees them all), so the handshake takes indices as parameters instead of drawing them.
    public func makeIndex() -> UInt32 {
        var index: UInt32 = 0
        withUnsafeMutableBytes(of: &index) { fill($0) }
        return index
    }

    func randomBytes(_ count: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        bytes.withUnsafeMutableBytes { fill($0) }
        return bytes
    }
}

/// OpenSSL's CSPRNG.
public struct SystemRandom: RandomSource, Sendable {
    public init() {}

    public func makeEphemeralKey() throws(CryptoError) -> X25519.PrivateKey {
        try X25519.PrivateKey.generate()
    }

    public func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        SecureRandom.fill(buffer)
    }
}
