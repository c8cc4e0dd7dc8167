import COpenSSL

/// ChaCha20-Poly1305 (RFC 8439) over one key: OpenSSL's, through its default provider's dispatch table
/// (`ProviderCipher`), with one context made at init and reused: every packet only resets the nonce, so
/// sealing and opening allocate nothing.
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

    private static let nonceCount = 12
    /// OSSL_CIPHER_PARAM_AEAD_TAG, in the binary's constant data: it outlives every parameter array naming it.
    nonisolated(unsafe) private static let tagName = UnsafeRawPointer(("tag" as StaticString).utf8Start).assumingMemoryBound(to: CChar.self)
    private let cipher: ProviderCipher
    private let context: ProviderCipher.Context

    /// A cipher over `key` (32 bytes). The key is copied into OpenSSL's context, which wipes it when freed.
    public init(key: some ByteInput) throws(CryptoError) {
        guard let cipher = ProviderCipher.chaCha20Poly1305 else {
            throw .openSSL(function: "OSSL_PROVIDER_query_operation(ChaCha20-Poly1305)")
        }
        guard let context = cipher.newContext(cipher.providerContext) else { throw .openSSL(function: "cipher_newctx") }
        let status: CryptoError? = key.withByteInput { key in
            guard key.count == Self.keyCount else { return .invalidLength(expected: Self.keyCount, actual: key.count) }
            let ok = cipher.encryptInit(context, key.baseAddress?.assumingMemoryBound(to: UInt8.self), key.count, nil, 0, nil)
            return ok == 1 ? nil : .openSSL(function: "cipher_encrypt_init")
        }
        if let status {
            cipher.freeContext(context)
            throw status
        }
        self.cipher = cipher
        self.context = context
    }

    deinit {
        cipher.freeContext(context)  // cleanses the key schedule
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
        var finalCount = 0
        guard cipher.final(context, base + plaintextCount, &finalCount, Self.tagCount) == 1,
              tagParameter(base + plaintextCount, cipher.getParameters) else {
            throw .openSSL(function: "cipher_final")
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
        guard tagParameter(base + plaintextCount, { context, parameters in cipher.setParameters(context, parameters) }) else {
            throw .openSSL(function: "cipher_set_ctx_params(tag)")
        }
        try crypt(base, count: plaintextCount)
        var finalCount = 0
        guard cipher.final(context, base + plaintextCount, &finalCount, 0) == 1 else {
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
            // No key: the context keeps it and only resets the nonce and the MAC state.
            let nonce = iv.baseAddress!.assumingMemoryBound(to: UInt8.self)
            return encrypting ? cipher.encryptInit(context, nil, 0, nonce, Self.nonceCount, nil)
                              : cipher.decryptInit(context, nil, 0, nonce, Self.nonceCount, nil)
        }
        guard ok == 1 else { throw .openSSL(function: encrypting ? "cipher_encrypt_init" : "cipher_decrypt_init") }
        let aadOK = aad.withByteInput { aad -> Bool in
            guard aad.count > 0 else { return true }
            var written = 0
            // No output buffer: the provider takes the input as additional data.
            return cipher.update(context, nil, &written, aad.count, aad.baseAddress!.assumingMemoryBound(to: UInt8.self),
                                 aad.count) == 1
        }
        guard aadOK else { throw .openSSL(function: "cipher_update(aad)") }
    }

    private func crypt(_ bytes: UnsafeMutablePointer<UInt8>, count: Int) throws(CryptoError) {
        guard count > 0 else { return }
        var written = 0
        guard cipher.update(context, bytes, &written, count, bytes, count) == 1, written == count else {
            throw .openSSL(function: "cipher_update")
        }
    }

    /// Hands the 16 tag bytes at `tag` to the provider as its "tag" parameter: read into them after a
    /// seal, taken from them before an open.
    private func tagParameter(_ tag: UnsafeMutablePointer<UInt8>,
                              _ exchange: (UnsafeMutableRawPointer?, UnsafeMutablePointer<OSSL_PARAM>?) -> Int32) -> Bool {
        var parameters = (OSSL_PARAM_construct_octet_string(Self.tagName, tag, Self.tagCount),
                          OSSL_PARAM_construct_end())
        return withUnsafeMutableBytes(of: &parameters) { raw in
            exchange(context, raw.baseAddress!.assumingMemoryBound(to: OSSL_PARAM.self)) == 1
        }
    }
}
