/* ChaCha20-Poly1305 seal and open throughput for WireGuard's transport path, three ways:
 *   reused  OpenSSL EVP, one context per key made once; each packet only resets the nonce (what
 *           WireGuardCrypto.ChaChaPoly does), sealing in place;
 *   fresh   OpenSSL EVP with a context made, keyed and freed for every packet (what an API that
 *           allocates per call, like swift-crypto's ChaChaPoly.seal, amounts to);
 *   sodium  libsodium's crypto_aead_chacha20poly1305_ietf_{en,de}crypt_detached, in place (built only
 *           with -DWITH_SODIUM).
 * A fixed number of packets per size, so the run is bounded. Prints one row per (variant, size, op). */
#include <openssl/evp.h>
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

static EVP_CIPHER_CTX *keyed_context(const EVP_CIPHER *cipher) {
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (!ctx || EVP_CipherInit_ex(ctx, cipher, NULL, key, NULL, 1) != 1) die("context");
    return ctx;
}

static void report(const char *variant, const char *op, int size, long count, double seconds) {
    double ns = seconds * 1e9 / count;
    double gbit = (double)size * 8 * count / seconds / 1e9;
    printf("%-7s %-4s %6d %10ld %10.1f %8.2f\n", variant, op, size, count, ns, gbit);
}

int main(int argc, char **argv) {
    static const int sizes[] = {64, 512, 1420, 8192};
    long budget = argc > 1 ? atol(argv[1]) : 400000000; /* bytes per (variant, size, op) */
    for (int i = 0; i < 32; i++) key[i] = (unsigned char)i;
    EVP_CIPHER *cipher = EVP_CIPHER_fetch(NULL, "ChaCha20-Poly1305", NULL);
    if (!cipher) die("fetch");
#ifdef WITH_SODIUM
    if (sodium_init() < 0) die("sodium_init");
#endif
    printf("%-7s %-4s %6s %10s %10s %8s\n", "variant", "op", "bytes", "packets", "ns/packet", "Gbit/s");
    for (unsigned s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        int size = sizes[s];
        long count = budget / size;
        if (count > 2000000) count = 2000000;
        unsigned char *buf = calloc(1, size + 16);
        double t0, t1;

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
