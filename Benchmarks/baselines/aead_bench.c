/* ChaCha20-Poly1305 seal and open throughput for WireGuard's transport path, four ways:
 *   provider OpenSSL's default provider called through its cipher dispatch table (provider-cipher(7)),
 *           one context per key made once; each packet only resets the nonce (what
 *           WireGuardCrypto.ChaChaPoly does), in place: the same cipher code as EVP without EVP's
 *           parameter lookups by name on every init and tag;
 *   reused  OpenSSL EVP, one context per key made once; each packet only resets the nonce (what
 *           ChaChaPoly did until it called the provider directly), sealing in place;
 *   fresh   OpenSSL EVP with a context made, keyed and freed for every packet (what an API that
 *           allocates per call, like swift-crypto's ChaChaPoly.seal, amounts to);
 *   sodium  libsodium's crypto_aead_chacha20poly1305_ietf_{en,de}crypt_detached, in place (built only
 *           with -DWITH_SODIUM).
 * A fixed number of packets per size, so the run is bounded. Prints one row per (variant, size, op). */
#include <openssl/core.h>
#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/provider.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef WITH_SODIUM
#include <sodium.h>
#endif

static unsigned char key[32];

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void nonce_for(unsigned char nonce[12], uint64_t counter) {
    memset(nonce, 0, 4);
    memcpy(nonce + 4, &counter, 8); /* little-endian on x86-64, as WireGuard's */
}

static void die(const char *what) {
    fprintf(stderr, "aead_bench: %s failed\n", what);
    exit(1);
}

static void evp_seal(EVP_CIPHER_CTX *ctx, unsigned char *buf, int len, uint64_t counter) {
    unsigned char nonce[12];
    int out;
    nonce_for(nonce, counter);
    if (EVP_CipherInit_ex(ctx, NULL, NULL, NULL, nonce, 1) != 1) die("init");
    if (EVP_CipherUpdate(ctx, buf, &out, buf, len) != 1) die("update");
    if (EVP_CipherFinal_ex(ctx, buf + len, &out) != 1) die("final");
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, 16, buf + len) != 1) die("tag");
}

static void evp_open(EVP_CIPHER_CTX *ctx, unsigned char *buf, int len, uint64_t counter) {
    unsigned char nonce[12];
    int out;
    nonce_for(nonce, counter);
    if (EVP_CipherInit_ex(ctx, NULL, NULL, NULL, nonce, 0) != 1) die("init");
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, 16, buf + len) != 1) die("set tag");
    if (EVP_CipherUpdate(ctx, buf, &out, buf, len) != 1) die("update");
    if (EVP_CipherFinal_ex(ctx, buf + len, &out) != 1) die("open: bad tag");
}

/* The default provider's ChaCha20-Poly1305 functions, found once. */
static struct {
    void *provctx;
    OSSL_FUNC_cipher_newctx_fn *newctx;
    OSSL_FUNC_cipher_freectx_fn *freectx;
    OSSL_FUNC_cipher_encrypt_init_fn *einit;
    OSSL_FUNC_cipher_decrypt_init_fn *dinit;
    OSSL_FUNC_cipher_update_fn *update;
    OSSL_FUNC_cipher_final_fn *final;
    OSSL_FUNC_cipher_get_ctx_params_fn *get;
    OSSL_FUNC_cipher_set_ctx_params_fn *set;
} prov;

static void find_provider_cipher(void) {
    OSSL_PROVIDER *provider = OSSL_PROVIDER_load(NULL, "default");
    int no_cache = 0;
    if (!provider) die("OSSL_PROVIDER_load");
    const OSSL_ALGORITHM *alg = OSSL_PROVIDER_query_operation(provider, OSSL_OP_CIPHER, &no_cache);
    for (; alg && alg->algorithm_names; alg++) {
        if (strncasecmp(alg->algorithm_names, "ChaCha20-Poly1305", 17) != 0) continue;
        for (const OSSL_DISPATCH *f = alg->implementation; f->function_id; f++) {
            switch (f->function_id) {
            case OSSL_FUNC_CIPHER_NEWCTX: prov.newctx = OSSL_FUNC_cipher_newctx(f); break;
            case OSSL_FUNC_CIPHER_FREECTX: prov.freectx = OSSL_FUNC_cipher_freectx(f); break;
            case OSSL_FUNC_CIPHER_ENCRYPT_INIT: prov.einit = OSSL_FUNC_cipher_encrypt_init(f); break;
            case OSSL_FUNC_CIPHER_DECRYPT_INIT: prov.dinit = OSSL_FUNC_cipher_decrypt_init(f); break;
            case OSSL_FUNC_CIPHER_UPDATE: prov.update = OSSL_FUNC_cipher_update(f); break;
            case OSSL_FUNC_CIPHER_FINAL: prov.final = OSSL_FUNC_cipher_final(f); break;
            case OSSL_FUNC_CIPHER_GET_CTX_PARAMS: prov.get = OSSL_FUNC_cipher_get_ctx_params(f); break;
            case OSSL_FUNC_CIPHER_SET_CTX_PARAMS: prov.set = OSSL_FUNC_cipher_set_ctx_params(f); break;
            }
        }
        break;
    }
    if (!prov.newctx || !prov.freectx || !prov.einit || !prov.dinit || !prov.update || !prov.final || !prov.get || !prov.set)
        die("ChaCha20-Poly1305 in the default provider");
    prov.provctx = OSSL_PROVIDER_get0_provider_ctx(provider);
}

static void *provider_context(void) {
    void *ctx = prov.newctx(prov.provctx);
    if (!ctx || prov.einit(ctx, key, 32, NULL, 0, NULL) != 1) die("provider context");
    return ctx;
}

static void provider_seal(void *ctx, unsigned char *buf, size_t len, uint64_t counter) {
    unsigned char nonce[12];
    size_t out;
    nonce_for(nonce, counter);
    OSSL_PARAM tag[2] = {OSSL_PARAM_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, buf + len, 16), OSSL_PARAM_END};
    if (prov.einit(ctx, NULL, 0, nonce, 12, NULL) != 1) die("provider init");
    if (prov.update(ctx, buf, &out, len, buf, len) != 1) die("provider update");
    if (prov.final(ctx, buf + len, &out, 16) != 1 || prov.get(ctx, tag) != 1) die("provider final");
}

static void provider_open(void *ctx, unsigned char *buf, size_t len, uint64_t counter) {
    unsigned char nonce[12];
    size_t out;
    nonce_for(nonce, counter);
    OSSL_PARAM tag[2] = {OSSL_PARAM_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, buf + len, 16), OSSL_PARAM_END};
    if (prov.dinit(ctx, NULL, 0, nonce, 12, NULL) != 1 || prov.set(ctx, tag) != 1) die("provider init");
    if (prov.update(ctx, buf, &out, len, buf, len) != 1) die("provider update");
    if (prov.final(ctx, buf + len, &out, 0) != 1) die("provider open: bad tag");
}

static EVP_CIPHER_CTX *keyed_context(const EVP_CIPHER *cipher) {
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (!ctx || EVP_CipherInit_ex(ctx, cipher, NULL, key, NULL, 1) != 1) die("context");
    return ctx;
}

static void report(const char *variant, const char *op, int size, long count, double seconds) {
    double ns = seconds * 1e9 / count;
    double gbit = (double)size * 8 * count / seconds / 1e9;
    printf("%-8s %-4s %6d %10ld %10.1f %8.2f\n", variant, op, size, count, ns, gbit);
}

int main(int argc, char **argv) {
    /* 1408 and 1420: full-sized packets at tund's and wg-quick's MTU (padding to 16 stops at the MTU);
       1424: 1,420 bytes padded to 16. */
    static const int sizes[] = {64, 512, 1408, 1420, 1424, 8192};
    long budget = argc > 1 ? atol(argv[1]) : 400000000; /* bytes per (variant, size, op) */
    for (int i = 0; i < 32; i++) key[i] = (unsigned char)i;
    EVP_CIPHER *cipher = EVP_CIPHER_fetch(NULL, "ChaCha20-Poly1305", NULL);
    if (!cipher) die("fetch");
    find_provider_cipher();
#ifdef WITH_SODIUM
    if (sodium_init() < 0) die("sodium_init");
#endif
    printf("%-8s %-4s %6s %10s %10s %8s\n", "variant", "op", "bytes", "packets", "ns/packet", "Gbit/s");
    for (unsigned s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        int size = sizes[s];
        long count = budget / size;
        if (count > 2000000) count = 2000000;
        unsigned char *buf = calloc(1, size + 16);
        double t0, t1;

        void *pctx = provider_context(), *prx = provider_context();
        t0 = now();
        for (long n = 0; n < count; n++) provider_seal(pctx, buf, size, n);
        t1 = now();
        report("provider", "seal", size, count, t1 - t0);
        double provider_seal_time = t1 - t0;
        t0 = now();
        for (long n = 0; n < count; n++) { provider_seal(pctx, buf, size, n); provider_open(prx, buf, size, n); }
        t1 = now();
        report("provider", "open", size, count, (t1 - t0) - provider_seal_time);
        prov.freectx(pctx);
        prov.freectx(prx);

        EVP_CIPHER_CTX *ctx = keyed_context(cipher);
        t0 = now();
        for (long n = 0; n < count; n++) evp_seal(ctx, buf, size, n);
        t1 = now();
        report("reused", "seal", size, count, t1 - t0);
        /* open needs a valid tag per counter: seal then open the same buffer, and subtract the seal time. */
        EVP_CIPHER_CTX *rx = keyed_context(cipher);
        t0 = now();
        for (long n = 0; n < count; n++) { evp_seal(ctx, buf, size, n); evp_open(rx, buf, size, n); }
        t1 = now();
        double seal_time = 0;
        { double a = now(); for (long n = 0; n < count; n++) evp_seal(ctx, buf, size, n); seal_time = now() - a; }
        report("reused", "open", size, count, (t1 - t0) - seal_time);
        EVP_CIPHER_CTX_free(rx);

        t0 = now();
        for (long n = 0; n < count; n++) {
            EVP_CIPHER_CTX *fresh = keyed_context(cipher);
            evp_seal(fresh, buf, size, n);
            EVP_CIPHER_CTX_free(fresh);
        }
        t1 = now();
        report("fresh", "seal", size, count, t1 - t0);
        t0 = now();
        for (long n = 0; n < count; n++) {
            evp_seal(ctx, buf, size, n);
            EVP_CIPHER_CTX *fresh = keyed_context(cipher);
            evp_open(fresh, buf, size, n);
            EVP_CIPHER_CTX_free(fresh);
        }
        t1 = now();
        report("fresh", "open", size, count, (t1 - t0) - seal_time);
        EVP_CIPHER_CTX_free(ctx);

#ifdef WITH_SODIUM
        unsigned char nonce[12], tag[16];
        t0 = now();
        for (long n = 0; n < count; n++) {
            nonce_for(nonce, n);
            crypto_aead_chacha20poly1305_ietf_encrypt_detached(buf, tag, NULL, buf, size, NULL, 0, NULL, nonce, key);
        }
        t1 = now();
        report("sodium", "seal", size, count, t1 - t0);
        double sodium_seal = t1 - t0;
        t0 = now();
        for (long n = 0; n < count; n++) {
            nonce_for(nonce, n);
            crypto_aead_chacha20poly1305_ietf_encrypt_detached(buf, tag, NULL, buf, size, NULL, 0, NULL, nonce, key);
            if (crypto_aead_chacha20poly1305_ietf_decrypt_detached(buf, NULL, buf, size, tag, NULL, 0, nonce, key) != 0)
                die("sodium open");
        }
        t1 = now();
        report("sodium", "open", size, count, (t1 - t0) - sodium_seal);
#endif
        free(buf);
    }
    EVP_CIPHER_free(cipher);
    return 0;
}
