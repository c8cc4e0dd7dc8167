import WireGuardCrypto

/// Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s, the Noise layer alone: the chaining key and hash of the
/// whitepaper (§5.4.2-5.4.4), with the prologue and the payloads as parameters. WireGuard's messages
/// (`Initiator`, `Responder`) call it with IDENTIFIER as the prologue, a TAI64N timestamp as the first
/// payload and nothing as the second; keeping them parameters lets the generic Noise test vectors
/// (cacophony's, with another prologue and payloads) check this code byte for byte.
///
///     <- s
///     ...
///     -> e, es, s, ss, {payload}
///     <- e, ee, se, psk, {payload}
struct NoiseState {
    /// C: the chaining key, from which every key is derived.
    var chainingKey: SecretBytes
    /// H: the hash of the transcript, the AEAD's associated data.
    var hash: [UInt8]

    /// C = HASH(CONSTRUCTION); H = HASH(C || prologue); H = HASH(H || S_pub of the responder).
    init(prologue: [UInt8], responderStatic: PublicKey) throws(CryptoError) {
        let initialChainingKey = try Blake2s.hash(WireGuardConstants.construction)
        chainingKey = SecretBytes(copying: initialChainingKey)
        hash = try Blake2s.hash(initialChainingKey, prologue)
        try mixHash(responderStatic.bytes)
    }

    /// H = HASH(H || data).
    mutating func mixHash(_ data: some ByteInput) throws(CryptoError) {
        hash = try Blake2s.hash(hash, data)
    }

    /// C = KDF1(C, input): how an ephemeral public key and the `ee`/`se` results enter the chain.
    mutating func mixChain(_ input: some ByteInput) throws(CryptoError) {
        chainingKey = try KDF.kdf1(key: chainingKey, input: input)
    }

    /// (C, κ) = KDF2(C, input), returning κ for one AEAD.
    mutating func mixKey(_ input: some ByteInput) throws(CryptoError) -> SecretBytes {
        let (next, key) = try KDF.kdf2(key: chainingKey, input: input)
        chainingKey = next
        return key
    }

    /// (C, τ, κ) = KDF3(C, Q); H = HASH(H || τ), returning κ: the psk token.
    mutating func mixKeyAndHash(_ presharedKey: SecretBytes) throws(CryptoError) -> SecretBytes {
        let (next, tau, key) = try KDF.kdf3(key: chainingKey, input: presharedKey)
        chainingKey = next
        try mixHash(tau)
        return key
    }

    /// AEAD(κ, 0, plaintext, H), then H = HASH(H || ciphertext).
    mutating func encryptAndHash(_ plaintext: some ByteInput, key: SecretBytes) throws(CryptoError) -> [UInt8] {
        let ciphertext = try ChaChaPoly(key: key).seal(plaintext, counter: 0, aad: hash)
        try mixHash(ciphertext)
        return ciphertext
    }

    /// The inverse of `encryptAndHash`; throws `authenticationFailed` when the tag does not verify.
    mutating func decryptAndHash(_ ciphertext: [UInt8], key: SecretBytes) throws(CryptoError) -> SecretBytes {
        let plaintext = try ChaChaPoly(key: key).open(ciphertext, counter: 0, aad: hash)
        try mixHash(ciphertext)
        return plaintext
    }

    /// (T_send of the initiator, T_send of the responder) = KDF2(C, ε).
    func split() throws(CryptoError) -> (initiatorSending: SecretBytes, responderSending: SecretBytes) {
        let (first, second) = try KDF.kdf2(key: chainingKey, input: [UInt8]())
        return (first, second)
    }
}

/// The Noise fields of the first message: ephemeral, encrypted static, encrypted payload.
struct NoiseInitiation {
    var ephemeral: [UInt8]
    var encryptedStatic: [UInt8]
    var encryptedPayload: [UInt8]
}

/// The Noise fields of the second message: ephemeral, encrypted payload.
struct NoiseResponse {
    var ephemeral: [UInt8]
    var encryptedPayload: [UInt8]
}

enum NoiseIKpsk2 {
    /// -> e, es, s, ss, {payload}
    static func writeInitiation(_ state: inout NoiseState, ephemeral: X25519.PrivateKey, localStatic: X25519.PrivateKey,
                                remoteStatic: PublicKey, payload: some ByteInput) throws(CryptoError) -> NoiseInitiation {
        try state.mixChain(ephemeral.publicKey.bytes)
        try state.mixHash(ephemeral.publicKey.bytes)
        let staticKey = try state.mixKey(ephemeral.sharedSecret(with: remoteStatic))
        let encryptedStatic = try state.encryptAndHash(localStatic.publicKey.bytes, key: staticKey)
        let payloadKey = try state.mixKey(localStatic.sharedSecret(with: remoteStatic))
        let encryptedPayload = try state.encryptAndHash(payload, key: payloadKey)
        return NoiseInitiation(ephemeral: ephemeral.publicKey.bytes, encryptedStatic: encryptedStatic,
                               encryptedPayload: encryptedPayload)
    }

    /// The responder's side of the first message: the initiator's static key and the payload.
    static func readInitiation(_ state: inout NoiseState, _ message: NoiseInitiation,
                               localStatic: X25519.PrivateKey) throws(CryptoError) -> (initiatorStatic: PublicKey, payload: SecretBytes) {
        let remoteEphemeral = try PublicKey(bytes: message.ephemeral)
        try state.mixChain(remoteEphemeral.bytes)
        try state.mixHash(remoteEphemeral.bytes)
        let staticKey = try state.mixKey(localStatic.sharedSecret(with: remoteEphemeral))
        let initiatorStaticBytes = try state.decryptAndHash(message.encryptedStatic, key: staticKey)
        let initiatorStatic = try PublicKey(bytes: initiatorStaticBytes.withUnsafeBytes { Array($0) })
        let payloadKey = try state.mixKey(localStatic.sharedSecret(with: initiatorStatic))
        let payload = try state.decryptAndHash(message.encryptedPayload, key: payloadKey)
        return (initiatorStatic, payload)
    }

    /// <- e, ee, se, psk, {payload}
    static func writeResponse(_ state: inout NoiseState, ephemeral: X25519.PrivateKey, initiatorEphemeral: PublicKey,
                              initiatorStatic: PublicKey, presharedKey: SecretBytes,
                              payload: some ByteInput) throws(CryptoError) -> NoiseResponse {
        try state.mixChain(ephemeral.publicKey.bytes)
        try state.mixHash(ephemeral.publicKey.bytes)
        try state.mixChain(ephemeral.sharedSecret(with: initiatorEphemeral))
        try state.mixChain(ephemeral.sharedSecret(with: initiatorStatic))
        let payloadKey = try state.mixKeyAndHash(presharedKey)
        let encryptedPayload = try state.encryptAndHash(payload, key: payloadKey)
        return NoiseResponse(ephemeral: ephemeral.publicKey.bytes, encryptedPayload: encryptedPayload)
    }

    /// The initiator's side of the second message: its payload.
    static func readResponse(_ state: inout NoiseState, _ message: NoiseResponse, ephemeral: X25519.PrivateKey,
                             localStatic: X25519.PrivateKey, presharedKey: SecretBytes) throws(CryptoError) -> SecretBytes {
        let responderEphemeral = try PublicKey(bytes: message.ephemeral)
        try state.mixChain(responderEphemeral.bytes)
        try state.mixHash(responderEphemeral.bytes)
        try state.mixChain(ephemeral.sharedSecret(with: responderEphemeral))
        try state.mixChain(localStatic.sharedSecret(with: responderEphemeral))
        let payloadKey = try state.mixKeyAndHash(presharedKey)
        return try state.decryptAndHash(message.encryptedPayload, key: payloadKey)
    }
}
