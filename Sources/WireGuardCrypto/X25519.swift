import COpenSSL

/// X25519 (RFC 7748) through OpenSSL's EVP_PKEY: the whitepaper's DH and DH-Generate.
public enum X25519 {
    /// A Curve25519 private key, held by OpenSSL (which wipes it when the key is freed).
    public final class PrivateKey: @unchecked Sendable {
        // Immutable after init, and OpenSSL allows concurrent derivations from one EVP_PKEY.
        private let key: OpaquePointer
        /// The matching public key.
        public let publicKey: PublicKey

        /// A new random key from OpenSSL's CSPRNG; OpenSSL clamps it as RFC 7748 says (low 3 bits clear,
        /// bit 254 set, bit 255 clear), which is also what `wg genkey` prints.
        public static func generate() throws(CryptoError) -> PrivateKey {
            guard let context = EVP_PKEY_CTX_new_id(EVP_PKEY_X25519, nil) else {
                throw .openSSL(function: "EVP_PKEY_CTX_new_id")
            }
            defer { EVP_PKEY_CTX_free(context) }
            var key: OpaquePointer?
            guard EVP_PKEY_keygen_init(context) == 1, EVP_PKEY_keygen(context, &key) == 1, let key else {
                throw .openSSL(function: "EVP_PKEY_keygen")
            }
            return try PrivateKey(taking: key)
        }

        /// A key from its 32 raw bytes (a configuration file, a test vector). Unclamped bytes are accepted:
        /// X25519 clamps the scalar when it uses it.
        public convenience init(rawRepresentation: some ByteInput) throws(CryptoError) {
            let key: OpaquePointer? = rawRepresentation.withByteInput { raw in
                guard raw.count == 32 else { return nil }
                return EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nil, raw.baseAddress!.assumingMemoryBound(to: UInt8.self), 32)
            }
            guard let key else {
                let count = rawRepresentation.withByteInput { $0.count }
                if count != 32 { throw .invalidLength(expected: 32, actual: count) }
                throw .openSSL(function: "EVP_PKEY_new_raw_private_key")
            }
            try self.init(taking: key)
        }

        /// A key from the base64 text `wg genkey` prints.
        public convenience init(base64 text: String) throws(CryptoError) {
            try self.init(rawRepresentation: Base64Key.decode(text))
        }

        private init(taking key: OpaquePointer) throws(CryptoError) {
            var bytes = [UInt8](repeating: 0, count: 32)
            var count = 32
            guard EVP_PKEY_get_raw_public_key(key, &bytes, &count) == 1, count == 32 else {
                EVP_PKEY_free(key)
                throw .openSSL(function: "EVP_PKEY_get_raw_public_key")
            }
            self.key = key
            self.publicKey = try PublicKey(bytes: bytes)
        }

        deinit {
            EVP_PKEY_free(key)
        }

        /// The 32 raw bytes, for writing a configuration file.
        public func rawRepresentation() throws(CryptoError) -> SecretBytes {
            try SecretBytes(count: 32) { (buffer: UnsafeMutableRawBufferPointer) throws(CryptoError) in
                var count = 32
                guard EVP_PKEY_get_raw_private_key(key, buffer.baseAddress!.assumingMemoryBound(to: UInt8.self), &count) == 1,
                      count == 32 else { throw .openSSL(function: "EVP_PKEY_get_raw_private_key") }
            }
        }

        /// DH(self, peer): the 32-byte shared secret. An all-zero result means the peer's key is a
        /// low-order point; it is refused, as the whitepaper and RFC 7748 §6.1 ask.
        public func sharedSecret(with peer: PublicKey) throws(CryptoError) -> SecretBytes {
            guard let peerKey = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nil, peer.bytes, 32) else {
                throw .openSSL(function: "EVP_PKEY_new_raw_public_key")
            }
            defer { EVP_PKEY_free(peerKey) }
            guard let context = EVP_PKEY_CTX_new(key, nil) else { throw .openSSL(function: "EVP_PKEY_CTX_new") }
            defer { EVP_PKEY_CTX_free(context) }
            guard EVP_PKEY_derive_init(context) == 1, EVP_PKEY_derive_set_peer(context, peerKey) == 1 else {
                throw .openSSL(function: "EVP_PKEY_derive_init")
            }
            let secret = try SecretBytes(count: 32) { (buffer: UnsafeMutableRawBufferPointer) throws(CryptoError) in
                var count = 32
                // OpenSSL itself fails the derivation when the result is all zero (ossl_x25519 checks it),
                // so a failure here is the same refusal as the check below.
                guard EVP_PKEY_derive(context, buffer.baseAddress!.assumingMemoryBound(to: UInt8.self), &count) == 1,
                      count == 32 else { throw .zeroSharedSecret }
            }
            guard !secret.isAllZero else { throw .zeroSharedSecret }
            return secret
        }
    }
}
