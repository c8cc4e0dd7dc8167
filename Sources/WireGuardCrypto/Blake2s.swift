import COpenSSL

/// BLAKE2s (RFC 7693) from OpenSSL: the plain 256-bit hash (EVP_MD "BLAKE2S-256") and the keyed form
/// (EVP_MAC "BLAKE2SMAC", present since OpenSSL 3.0) whose output size is a parameter, which is how
/// WireGuard's MAC1, MAC2 and cookies get their 16 bytes: a keyed BLAKE2s-128 is not a truncated
/// BLAKE2s-256 (the size is part of the parameter block), so a truncation would not interoperate.
public enum Blake2s {
    /// Output size of the plain hash.
    public static let hashCount = 32

    // Fetched once: fetching by name costs a lookup in the provider's tables. Fetched algorithm objects
    // are immutable and documented as safe to share between threads.
    nonisolated(unsafe) private static let digest: OpaquePointer? = EVP_MD_fetch(nil, "BLAKE2S-256", nil)
    nonisolated(unsafe) private static let keyedMAC: OpaquePointer? = EVP_MAC_fetch(nil, "BLAKE2SMAC", nil)

    /// BLAKE2s-256 of the concatenation of `parts` (the whitepaper's HASH).
    public static func hash(_ parts: any ByteInput...) throws(CryptoError) -> [UInt8] {
        try hash(parts)
    }

    /// BLAKE2s-256 of the concatenation of `parts`.
    public static func hash(_ parts: [any ByteInput]) throws(CryptoError) -> [UInt8] {
        guard let digest else { throw .openSSL(function: "EVP_MD_fetch(BLAKE2S-256)") }
        guard let context = EVP_MD_CTX_new() else { throw .openSSL(function: "EVP_MD_CTX_new") }
        defer { EVP_MD_CTX_free(context) }
        guard EVP_DigestInit_ex(context, digest, nil) == 1 else { throw .openSSL(function: "EVP_DigestInit_ex") }
        for part in parts {
            let ok = part.withByteInput { EVP_DigestUpdate(context, $0.baseAddress, $0.count) == 1 }
            guard ok else { throw .openSSL(function: "EVP_DigestUpdate") }
        }
        var output = [UInt8](repeating: 0, count: hashCount)
        var written: UInt32 = 0
        guard EVP_DigestFinal_ex(context, &output, &written) == 1, written == hashCount else {
            throw .openSSL(function: "EVP_DigestFinal_ex")
        }
        return output
    }

    /// Keyed BLAKE2s of the concatenation of `parts`, `outputCount` bytes long (1...32; WireGuard's MAC is 16),
    /// with a key of 1...32 bytes (the whitepaper's MAC).
    public static func mac(key: some ByteInput, outputCount: Int, _ parts: any ByteInput...) throws(CryptoError) -> [UInt8] {
        guard (1...32).contains(outputCount) else { throw .invalidLength(expected: 16, actual: outputCount) }
        guard let keyedMAC else { throw .openSSL(function: "EVP_MAC_fetch(BLAKE2SMAC)") }
        var output = [UInt8](repeating: 0, count: outputCount)
        try OpenSSLMAC.compute(keyedMAC, key: key, parts: parts, into: &output) { size in
            [OSSL_PARAM_construct_size_t(OpenSSLMAC.cString("size"), size), OSSL_PARAM_construct_end()]
        }
        return output
    }
}

/// One EVP_MAC computation (a context made, keyed, fed, finished and freed), shared by keyed BLAKE2s and HMAC.
enum OpenSSLMAC {
    /// `parameters` gets a pointer to the output size, valid while OpenSSL reads it in EVP_MAC_init.
    static func compute(_ mac: OpaquePointer, key: some ByteInput, parts: [any ByteInput], into output: inout [UInt8],
                        parameters: (UnsafeMutablePointer<Int>) -> [OSSL_PARAM]) throws(CryptoError) {
        guard let context = EVP_MAC_CTX_new(mac) else { throw .openSSL(function: "EVP_MAC_CTX_new") }
        defer { EVP_MAC_CTX_free(context) }  // cleanses the keyed state
        var size = output.count
        let initOK = withUnsafeMutablePointer(to: &size) { size in
            var params = parameters(size)
            return key.withByteInput { key in
                EVP_MAC_init(context, key.baseAddress?.assumingMemoryBound(to: UInt8.self), key.count, &params) == 1
            }
        }
        guard initOK else { throw .openSSL(function: "EVP_MAC_init") }
        for part in parts {
            let ok = part.withByteInput { part in
                part.count == 0 || EVP_MAC_update(context, part.baseAddress!.assumingMemoryBound(to: UInt8.self), part.count) == 1
            }
            guard ok else { throw .openSSL(function: "EVP_MAC_update") }
        }
        var written = 0
        let capacity = output.count
        guard EVP_MAC_final(context, &output, &written, capacity) == 1, written == capacity else {
            throw .openSSL(function: "EVP_MAC_final")
        }
    }
}

extension OpenSSLMAC {
    /// A C string that lives as long as the program: OSSL_PARAM keeps the pointers to its name and value,
    /// which a Swift String converted at a call would not guarantee.
    static func cString(_ text: StaticString) -> UnsafeMutablePointer<CChar> {
        UnsafeMutableRawPointer(mutating: text.utf8Start).assumingMemoryBound(to: CChar.self)
    }
}
