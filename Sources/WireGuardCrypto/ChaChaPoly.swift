import COpenSSL

/// ChaCha20-Poly1305 (RFC 8439) over one key, through OpenSSL's EVP with one context made at init and reused:
/// every packet only resets the nonce, so sealing and opening allocate nothing.
///
/// Not thread-safe: the context holds per-message state. WireGuard gives each direction its own key, so
/// one instance per key per thread is the intended use.
public final class ChaChaPoly {
    /// Key size in bytes.
    public static let keyCount = 32
    /// Poly1305 tag size in bytes, appended to every sealed message.
    public static let tagCount = 16

    /// The 96-bit nonce: 4 fixed bytes, then a 64-bit little-endian counter. WireGuard's transport and
    /// handshake nonces are `prefix` 0 and the message counter (the whitepaper's "32 bits of zeros
    /// followed by the 64-bit little-endian value of n").
    public struct Nonce: Sendable {
        /// The first 4 bytes, read as a little-endian integer.
        public var prefix: UInt32
        /// The last 8 bytes, read as a little-endian integer.
        public var counter: UInt64

        public init(prefix: UInt32 = 0, counter: UInt64) {
            self.prefix = prefix
            self.counter = counter
        }
    }

    private let context: OpaquePointer

    /// A cipher over `key` (32 bytes). The key is copied into OpenSSL's context, which wipes it when freed.
    public init(key: some ByteInput) throws(CryptoError) {
        guard let context = EVP_CIPHER_CTX_new() else { throw .openSSL(function: "EVP_CIPHER_CTX_new") }
        let status: CryptoError? = key.withByteInput { key in
            guard key.count == Self.keyCount else { return .invalidLength(expected: Self.keyCount, actual: key.count) }
            let ok = EVP_CipherInit_ex(context, EVP_chacha20_poly1305(), nil,
                                       key.baseAddress?.assumingMemoryBound(to: UInt8.self), nil, 1)
            return ok == 1 ? nil : .openSSL(function: "EVP_CipherInit_ex")
        }
        if let status {
            EVP_CIPHER_CTX_free(context)
            throw status
        }
        self.context = context
    }

    deinit {
        EVP_CIPHER_CTX_free(context)  // cleanses the key schedule
    }

    /// Encrypts the first `plaintextCount` bytes of `buffer` in place and writes the 16-byte tag right after
    /// them; returns the sealed size (`plaintextCount + 16`).
    public func seal(inPlace buffer: UnsafeMutableRawBufferPointer, plaintextCount: Int, nonce: Nonce,
                     aad: some ByteInput = [UInt8]()) throws(CryptoError) -> Int {
        let sealedCount = plaintextCount + Self.tagCount
        guard plaintextCount >= 0, buffer.count >= sealedCount else {
            throw .bufferTooSmall(needed: sealedCount, available: buffer.count)
        }
        try start(nonce: nonce, encrypting: true, aad: aad)
        let base = buffer.baseAddress!.assumingMemoryBound(to: UInt8.self)
        try crypt(base, count: plaintextCount)
        var finalCount: Int32 = 0
        guard EVP_CipherFinal_ex(context, base + plaintextCount, &finalCount) == 1 else {
            throw .openSSL(function: "EVP_CipherFinal_ex")
        }
        guard EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_AEAD_GET_TAG, Int32(Self.tagCount), base + plaintextCount) == 1 else {
            throw .openSSL(function: "EVP_CTRL_AEAD_GET_TAG")
        }
        return sealedCount
    }

    /// Verifies and decrypts the first `ciphertextCount` bytes of `buffer` (ciphertext then tag) in place;
    /// returns the plaintext size. On a bad tag the would-be plaintext is wiped before throwing, so no
    /// unauthenticated byte is ever left for a caller to use by mistake.
    public func open(inPlace buffer: UnsafeMutableRawBufferPointer, ciphertextCount: Int, nonce: Nonce,
                     aad: some ByteInput = [UInt8]()) throws(CryptoError) -> Int {
        guard ciphertextCount >= Self.tagCount else { throw .authenticationFailed }
        guard buffer.count >= ciphertextCount else {
            throw .bufferTooSmall(needed: ciphertextCount, available: buffer.count)
        }
        let plaintextCount = ciphertextCount - Self.tagCount
        try start(nonce: nonce, encrypting: false, aad: aad)
        let base = buffer.baseAddress!.assumingMemoryBound(to: UInt8.self)
        guard EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_AEAD_SET_TAG, Int32(Self.tagCount), base + plaintextCount) == 1 else {
            throw .openSSL(function: "EVP_CTRL_AEAD_SET_TAG")
        }
        try crypt(base, count: plaintextCount)
        var finalCount: Int32 = 0
        guard EVP_CipherFinal_ex(context, base + plaintextCount, &finalCount) == 1 else {
            OPENSSL_cleanse(base, plaintextCount)
            throw .authenticationFailed
        }
        return plaintextCount
    }

    /// WireGuard's form: the nonce is 4 zero bytes and the little-endian `counter`.
    public func seal(inPlace buffer: UnsafeMutableRawBufferPointer, plaintextCount: Int, counter: UInt64,
                     aad: some ByteInput = [UInt8]()) throws(CryptoError) -> Int {
        try seal(inPlace: buffer, plaintextCount: plaintextCount, nonce: Nonce(counter: counter), aad: aad)
    }

    /// WireGuard's form: the nonce is 4 zero bytes and the little-endian `counter`.
    public func open(inPlace buffer: UnsafeMutableRawBufferPointer, ciphertextCount: Int, counter: UInt64,
                     aad: some ByteInput = [UInt8]()) throws(CryptoError) -> Int {
        try open(inPlace: buffer, ciphertextCount: ciphertextCount, nonce: Nonce(counter: counter), aad: aad)
    }

    /// Seals a copy of `plaintext`: for handshake fields, where an allocation per message does not matter.
    public func seal(_ plaintext: some ByteInput, counter: UInt64, aad: some ByteInput) throws(CryptoError) -> [UInt8] {
        var output = plaintext.withByteInput { Array($0) }
        let plaintextCount = output.count
        output.append(contentsOf: repeatElement(0, count: Self.tagCount))
        let result: Result<Int, CryptoError> = output.withUnsafeMutableBytes { buffer in
            Result { () throws(CryptoError) -> Int in
                try seal(inPlace: buffer, plaintextCount: plaintextCount, counter: counter, aad: aad)
            }
        }
        _ = try result.get()
        return output
    }

    /// Opens a copy of `ciphertext` (tag included) into a new array of secret bytes.
    public func open(_ ciphertext: some ByteInput, counter: UInt64, aad: some ByteInput) throws(CryptoError) -> SecretBytes {
        let count = ciphertext.withByteInput { $0.count }
        guard count >= Self.tagCount else { throw .authenticationFailed }
        // Opened in a scratch buffer of the full size, then only the plaintext is kept.
        let scratch = try SecretBytes(count: count) { (buffer: UnsafeMutableRawBufferPointer) throws(CryptoError) in
            ciphertext.withByteInput { buffer.copyMemory(from: $0) }
            _ = try open(inPlace: buffer, ciphertextCount: count, counter: counter, aad: aad)
        }
        return scratch.withUnsafeBytes { SecretBytes(copying: $0.prefix(count - Self.tagCount)) }
    }

    private func start(nonce: Nonce, encrypting: Bool, aad: some ByteInput) throws(CryptoError) {
        var iv: (UInt64, UInt64) = (0, 0)
        let ok = withUnsafeMutableBytes(of: &iv) { iv in
            iv.storeBytes(of: nonce.prefix.littleEndian, toByteOffset: 0, as: UInt32.self)
            iv.storeBytes(of: nonce.counter.littleEndian, toByteOffset: 4, as: UInt64.self)
            // No cipher and no key: OpenSSL keeps both and only resets the nonce and the MAC state.
            return EVP_CipherInit_ex(context, nil, nil, nil, iv.baseAddress!.assumingMemoryBound(to: UInt8.self),
                                     encrypting ? 1 : 0)
        }
        guard ok == 1 else { throw .openSSL(function: "EVP_CipherInit_ex") }
        let aadOK = aad.withByteInput { aad -> Bool in
            guard aad.count > 0 else { return true }
            guard aad.count <= Int(Int32.max) else { return false }
            var written: Int32 = 0
            return EVP_CipherUpdate(context, nil, &written, aad.baseAddress!.assumingMemoryBound(to: UInt8.self),
                                    Int32(aad.count)) == 1
        }
        guard aadOK else { throw .openSSL(function: "EVP_CipherUpdate(aad)") }
    }

    private func crypt(_ bytes: UnsafeMutablePointer<UInt8>, count: Int) throws(CryptoError) {
        guard count > 0 else { return }
        guard count <= Int(Int32.max) else { throw .invalidLength(expected: Int(Int32.max), actual: count) }
        var written: Int32 = 0
        guard EVP_CipherUpdate(context, bytes, &written, bytes, Int32(count)) == 1, Int(written) == count else {
            throw .openSSL(function: "EVP_CipherUpdate")
        }
    }
}
