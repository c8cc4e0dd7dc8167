#ifndef TUND_COPENSSL_H
#define TUND_COPENSSL_H
/* OpenSSL 3's libcrypto, for WireGuard's primitives: ChaCha20-Poly1305 through the default provider's
   cipher dispatch table (provider-cipher(7)), BLAKE2s through EVP, X25519 through EVP_PKEY, the keyed
   BLAKE2s and HMAC through EVP_MAC, randomness through RAND. */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/core.h>
#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <openssl/err.h>
#endif
