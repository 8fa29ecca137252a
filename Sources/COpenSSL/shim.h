// OpenSSL 3: the EVP digest and MAC interfaces Wyrcan uses (SHA-256, MD5, HMAC), and PEM/X.509
// for public keys.
#ifndef WYRCAN_COPENSSL_SHIM_H
#define WYRCAN_COPENSSL_SHIM_H
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/bio.h>

// OSSL_PARAM_construct_utf8_string takes a non-const char*; keep the cast in C.
static inline OSSL_PARAM wyr_ossl_param_digest(const char *name) {
    return OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)name, 0);
}
static inline OSSL_PARAM wyr_ossl_param_end(void) { return OSSL_PARAM_construct_end(); }
#endif
