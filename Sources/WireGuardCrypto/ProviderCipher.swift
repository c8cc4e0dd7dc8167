import COpenSSL

/// OpenSSL's own ChaCha20-Poly1305, called through its default provider's dispatch table (the public
/// interface of provider-cipher(7), found with `OSSL_PROVIDER_query_operation`) instead of through EVP.
///
/// Why: the cipher is the same code either way, but EVP 3.0 wraps every message in parameter lookups by
/// name (the IV length on each init, the tag through `EVP_CIPHER_CTX_ctrl`): 60-120 ns per message at every
/// size from 64 to 8,192 bytes here (Benchmarks/aead-bench.sh, "provider" against "reused").
struct ProviderCipher: @unchecked Sendable {  // function pointers and a provider handle held for the process
    typealias Context = UnsafeMutableRawPointer

    let providerContext: UnsafeMutableRawPointer?
    let newContext: OSSL_FUNC_cipher_newctx_fn
    let freeContext: OSSL_FUNC_cipher_freectx_fn
    let encryptInit: OSSL_FUNC_cipher_encrypt_init_fn
    let decryptInit: OSSL_FUNC_cipher_decrypt_init_fn
    let update: OSSL_FUNC_cipher_update_fn
    let final: OSSL_FUNC_cipher_final_fn
    let getParameters: OSSL_FUNC_cipher_get_ctx_params_fn
    let setParameters: OSSL_FUNC_cipher_set_ctx_params_fn

    /// The default provider's ChaCha20-Poly1305, looked up once; nil when this libcrypto has none.
    static let chaCha20Poly1305: ProviderCipher? = ProviderCipher(named: "ChaCha20-Poly1305")

    private init?(named name: String) {
        // Loaded for the life of the process: the table's functions live in it.
        guard let provider = OSSL_PROVIDER_load(nil, "default") else { return nil }
        var noCache: Int32 = 0
        guard var algorithm = OSSL_PROVIDER_query_operation(provider, OSSL_OP_CIPHER, &noCache) else { return nil }
        defer { OSSL_PROVIDER_unquery_operation(provider, OSSL_OP_CIPHER, algorithm) }
        var table: UnsafePointer<OSSL_DISPATCH>?
        while let names = algorithm.pointee.algorithm_names {
            // "name:alias:OID", compared as OpenSSL compares names: without case.
            if String(cString: names).split(separator: ":").contains(where: { $0.lowercased() == name.lowercased() }) {
                table = algorithm.pointee.implementation
                break
            }
            algorithm += 1
        }
        var newContext: OSSL_FUNC_cipher_newctx_fn?, freeContext: OSSL_FUNC_cipher_freectx_fn?
        var encryptInit: OSSL_FUNC_cipher_encrypt_init_fn?, decryptInit: OSSL_FUNC_cipher_decrypt_init_fn?
        var update: OSSL_FUNC_cipher_update_fn?, final: OSSL_FUNC_cipher_final_fn?
        var getParameters: OSSL_FUNC_cipher_get_ctx_params_fn?, setParameters: OSSL_FUNC_cipher_set_ctx_params_fn?
        while let entry = table, entry.pointee.function_id != 0 {
            switch entry.pointee.function_id {
            case OSSL_FUNC_CIPHER_NEWCTX: newContext = OSSL_FUNC_cipher_newctx(entry)
            case OSSL_FUNC_CIPHER_FREECTX: freeContext = OSSL_FUNC_cipher_freectx(entry)
            case OSSL_FUNC_CIPHER_ENCRYPT_INIT: encryptInit = OSSL_FUNC_cipher_encrypt_init(entry)
            case OSSL_FUNC_CIPHER_DECRYPT_INIT: decryptInit = OSSL_FUNC_cipher_decrypt_init(entry)
            case OSSL_FUNC_CIPHER_UPDATE: update = OSSL_FUNC_cipher_update(entry)
            case OSSL_FUNC_CIPHER_FINAL: final = OSSL_FUNC_cipher_final(entry)
            case OSSL_FUNC_CIPHER_GET_CTX_PARAMS: getParameters = OSSL_FUNC_cipher_get_ctx_params(entry)
            case OSSL_FUNC_CIPHER_SET_CTX_PARAMS: setParameters = OSSL_FUNC_cipher_set_ctx_params(entry)
            default: break
            }
            table = entry + 1
        }
        guard let newContext, let freeContext, let encryptInit, let decryptInit, let update, let final,
              let getParameters, let setParameters else { return nil }
        self.providerContext = OSSL_PROVIDER_get0_provider_ctx(provider)
        (self.newContext, self.freeContext, self.encryptInit, self.decryptInit) = (newContext, freeContext, encryptInit, decryptInit)
        (self.update, self.final, self.getParameters, self.setParameters) = (update, final, getParameters, setParameters)
    }
}
