import COpenSSL

/// HMAC (RFC 2104) over BLAKE2s-256, from OpenSSL's EVP_MAC "HMAC" with the digest parameter set: the
/// whitepaper's HMAC, on which its KDF is built (WireGuard uses HMAC here, not BLAKE2s's own keying).
public enum HMACBlake2s {
    /// Output size in bytes.
    public static let outputCount = 32

    nonisolated(unsafe) private static let hmac: OpaquePointer? = EVP_MAC_fetch(nil, "HMAC", nil)

    /// HMAC-BLAKE2s(key, concatenation of `parts`), into a fresh secret (every use in WireGuard is a key).
    public static func authenticate(key: some ByteInput, _ parts: [any ByteInput]) throws(CryptoError) -> SecretBytes {
        guard let hmac else { throw .openSSL(function: "EVP_MAC_fetch(HMAC)") }
        var output = [UInt8](repeating: 0, count: outputCount)
        defer { for index in output.indices { output[index] = 0 } }
        try OpenSSLMAC.compute(hmac, key: key, parts: parts, into: &output) { _ in
            [OSSL_PARAM_construct_utf8_string(OpenSSLMAC.cString("digest"), OpenSSLMAC.cString("BLAKE2S-256"), 0),
             OSSL_PARAM_construct_end()]
        }
        return SecretBytes(copying: output)
    }
}

/// The whitepaper's KDF_n(key, input): τ0 = HMAC(key, input), τ1 = HMAC(τ0, 0x1),
/// τi = HMAC(τ0, τ(i-1) || i); it returns τ1...τn. This is HKDF with BLAKE2s, as Noise's HKDF.
public enum KDF {
    /// KDF_n for n in 1...3, the only counts WireGuard uses.
    public static func derive(_ count: Int, key: some ByteInput, input: some ByteInput) throws(CryptoError) -> [SecretBytes] {
        precondition((1...3).contains(count))
        let pseudorandomKey = try HMACBlake2s.authenticate(key: key, [input])
        var outputs: [SecretBytes] = []
        for index in 1...count {
            let counter: [UInt8] = [UInt8(index)]
            let parts: [any ByteInput] = outputs.last.map { [$0, counter] } ?? [counter]
            outputs.append(try HMACBlake2s.authenticate(key: pseudorandomKey, parts))
        }
        return outputs
    }

    /// KDF1: one 32-byte output.
    public static func kdf1(key: some ByteInput, input: some ByteInput) throws(CryptoError) -> SecretBytes {
        try derive(1, key: key, input: input)[0]
    }

    /// KDF2: two 32-byte outputs.
    public static func kdf2(key: some ByteInput, input: some ByteInput) throws(CryptoError) -> (SecretBytes, SecretBytes) {
        let outputs = try derive(2, key: key, input: input)
        return (outputs[0], outputs[1])
    }

    /// KDF3: three 32-byte outputs.
    public static func kdf3(key: some ByteInput, input: some ByteInput) throws(CryptoError) -> (SecretBytes, SecretBytes, SecretBytes) {
        let outputs = try derive(3, key: key, input: input)
        return (outputs[0], outputs[1], outputs[2])
    }
}
