// The system's OpenSSL 3 (Debian: libssl-dev to build, libssl3 to run) as localnlb calls it. What
// OpenSSL defines as macros, which Swift cannot call, is wrapped here in one-line functions; nothing
// here does cryptography of its own.
#ifndef CLOCALNLB_TLS_H
#define CLOCALNLB_TLS_H

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>

static inline int clnb_ssl_ctx_set_min_proto(SSL_CTX *ctx, int version) {
    return (int)SSL_CTX_set_min_proto_version(ctx, version);
}
static inline int clnb_ssl_ctx_set_max_proto(SSL_CTX *ctx, int version) {
    return (int)SSL_CTX_set_max_proto_version(ctx, version);
}
/// Partial writes, a write buffer that may move between retries, and no renegotiation (as on NLB).
static inline void clnb_ssl_ctx_defaults(SSL_CTX *ctx) {
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
}
static inline int clnb_tls1_version(void) { return TLS1_VERSION; }
static inline int clnb_tls1_1_version(void) { return TLS1_1_VERSION; }
static inline int clnb_tls1_2_version(void) { return TLS1_2_VERSION; }
static inline int clnb_tls1_3_version(void) { return TLS1_3_VERSION; }
/// TLS 1.0 and 1.1 need security level 0 in OpenSSL 3 (their SHA-1 signatures); a policy that offers
/// them asks for that level, as AWS's 2016-08 policy serves those clients.
static inline void clnb_ssl_ctx_set_security_level(SSL_CTX *ctx, int level) { SSL_CTX_set_security_level(ctx, level); }
/// A new EC key on P-256, P-384 or P-521 (by curve name), or an RSA key of `bits`.
static inline EVP_PKEY *clnb_ec_key(const char *curve) { return EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve); }
static inline EVP_PKEY *clnb_rsa_key(size_t bits) { return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", bits); }
static inline int clnb_ssl_ctx_add_chain_cert(SSL_CTX *ctx, X509 *cert) { return (int)SSL_CTX_add1_chain_cert(ctx, cert); }
typedef int (*clnb_servername_cb)(SSL *ssl, int *alert, void *arg);
static inline void clnb_ssl_ctx_set_servername_callback(SSL_CTX *ctx, clnb_servername_cb cb, void *arg) {
    SSL_CTX_set_tlsext_servername_callback(ctx, cb);
    SSL_CTX_set_tlsext_servername_arg(ctx, arg);
}
static inline int clnb_tlsext_err_ok(void) { return SSL_TLSEXT_ERR_OK; }
/// Mutual TLS, verify mode: the client must present a certificate that chains to `store`; with
/// `ignore_expiry`, an expired (or not yet valid) one still passes, as AWS's IgnoreClientCertificateExpiry.
static inline int clnb_verify_ignoring_expiry(int ok, X509_STORE_CTX *ctx) {
    if (!ok) {
        int error = X509_STORE_CTX_get_error(ctx);
        if (error == X509_V_ERR_CERT_HAS_EXPIRED || error == X509_V_ERR_CERT_NOT_YET_VALID) return 1;
    }
    return ok;
}
/// With revocation lists: a CA of the bundle that has none is not a failure (AWS checks revocation
/// where a list was added), a certificate a list names is.
static inline int clnb_verify_with_crls(int ok, X509_STORE_CTX *ctx) {
    if (!ok && X509_STORE_CTX_get_error(ctx) == X509_V_ERR_UNABLE_TO_GET_CRL) return 1;
    return ok;
}
static inline int clnb_verify_with_crls_ignoring_expiry(int ok, X509_STORE_CTX *ctx) {
    return clnb_verify_ignoring_expiry(clnb_verify_with_crls(ok, ctx), ctx);
}
static inline void clnb_ssl_ctx_verify_clients(SSL_CTX *ctx, X509_STORE *store, int ignore_expiry, int crls) {
    if (crls) X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
    SSL_CTX_set_cert_store(ctx, store);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                       crls ? (ignore_expiry ? clnb_verify_with_crls_ignoring_expiry : clnb_verify_with_crls)
                            : (ignore_expiry ? clnb_verify_ignoring_expiry : NULL));
    SSL_CTX_set_verify_depth(ctx, 8);
}
static inline int clnb_revoked_count(STACK_OF(X509_REVOKED) *revoked) { return sk_X509_REVOKED_num(revoked); }
static inline void clnb_crl_free(X509_CRL *crl) { X509_CRL_free(crl); }
static inline int clnb_ssl_set_server_name(SSL *ssl, const char *name) { return (int)SSL_set_tlsext_host_name(ssl, name); }
static inline long clnb_bio_pending_data(BIO *bio, char **data) { return BIO_get_mem_data(bio, data); }

/// The URIs of a certificate's subjectAltName, newline-separated into `out`; the count, or -1.
static inline int clnb_x509_alt_uris(X509 *cert, char *out, size_t size) {
    GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    size_t used = 0;
    int count = 0;
    if (size > 0) out[0] = 0;
    if (!names) return 0;
    for (int i = 0; i < sk_GENERAL_NAME_num(names); i++) {
        const GENERAL_NAME *name = sk_GENERAL_NAME_value(names, i);
        if (name->type != GEN_URI) continue;
        const char *value = (const char *)ASN1_STRING_get0_data(name->d.uniformResourceIdentifier);
        size_t length = strlen(value);
        if (used + length + 2 > size) { GENERAL_NAMES_free(names); return -1; }
        if (count > 0) out[used++] = '\n';
        memcpy(out + used, value, length);
        used += length;
        out[used] = 0;
        count++;
    }
    GENERAL_NAMES_free(names);
    return count;
}

/// The DNS names and IP addresses of a certificate's subjectAltName, comma-separated into `out`; the
/// count, or -1 when they do not fit.
static inline int clnb_x509_alt_names(X509 *cert, char *out, size_t size) {
    GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    size_t used = 0;
    int count = 0;
    if (size > 0) out[0] = 0;
    if (!names) return 0;
    for (int i = 0; i < sk_GENERAL_NAME_num(names); i++) {
        const GENERAL_NAME *name = sk_GENERAL_NAME_value(names, i);
        char text[64];
        const char *value = NULL;
        if (name->type == GEN_DNS) {
            value = (const char *)ASN1_STRING_get0_data(name->d.dNSName);
        } else if (name->type == GEN_IPADD && name->d.iPAddress->length == 4) {
            const unsigned char *a = name->d.iPAddress->data;
            snprintf(text, sizeof text, "%u.%u.%u.%u", a[0], a[1], a[2], a[3]);
            value = text;
        }
        if (!value) continue;
        size_t length = strlen(value);
        if (used + length + 2 > size) { GENERAL_NAMES_free(names); return -1; }
        if (count > 0) out[used++] = ',';
        memcpy(out + used, value, length);
        used += length;
        out[used] = 0;
        count++;
    }
    GENERAL_NAMES_free(names);
    return count;
}

#endif
