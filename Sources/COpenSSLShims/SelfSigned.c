#include "COpenSSLShims.h"
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

static char *bio_to_string(BIO *bio) {
    char *data = NULL;
    long len = BIO_get_mem_data(bio, &data);
    if (len <= 0) return NULL;
    char *out = malloc((size_t)len + 1);
    if (!out) return NULL;
    memcpy(out, data, (size_t)len);
    out[len] = 0;
    return out;
}

int COpenSSLShims_self_signed_pem(const char *common_name, int days,
                               char **cert_pem, char **key_pem) {
    return COpenSSLShims_self_signed_pem_san(common_name, NULL, days, cert_pem, key_pem);
}

int COpenSSLShims_self_signed_pem_san(const char *common_name, const char *subject_alt_name, int days,
                                      char **cert_pem, char **key_pem) {
    int ok = -1;
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *cert = X509_new();
    BIO *cbio = BIO_new(BIO_s_mem()), *kbio = BIO_new(BIO_s_mem());
    if (!key || !cert || !cbio || !kbio) goto done;

    unsigned char serial[8];
    if (RAND_bytes(serial, sizeof serial) != 1) goto done;
    serial[0] &= 0x7f; /* positive serial */
    BIGNUM *bn = BN_bin2bn(serial, sizeof serial, NULL);
    if (!bn) goto done;
    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert));
    BN_free(bn);

    X509_set_version(cert, 2);
    X509_gmtime_adj(X509_getm_notBefore(cert), -86400);
    X509_gmtime_adj(X509_getm_notAfter(cert), (long)days * 86400);
    X509_set_pubkey(cert, key);
    X509_NAME *name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               (const unsigned char *)common_name, -1, -1, 0);
    X509_set_issuer_name(cert, name);
    if (subject_alt_name && *subject_alt_name) {
        /* RFC 6125 §6.4.4: browsers match names against subjectAltName only, never the CN. */
        X509V3_CTX ctx;
        X509V3_set_ctx(&ctx, cert, cert, NULL, NULL, 0);
        X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name, subject_alt_name);
        if (!ext) goto done;
        int added = X509_add_ext(cert, ext, -1);
        X509_EXTENSION_free(ext);
        if (added != 1) goto done;
    }
    if (X509_sign(cert, key, EVP_sha256()) <= 0) goto done;
    if (PEM_write_bio_X509(cbio, cert) != 1) goto done;
    if (PEM_write_bio_PrivateKey(kbio, key, NULL, NULL, 0, NULL, NULL) != 1) goto done;
    *cert_pem = bio_to_string(cbio);
    *key_pem = bio_to_string(kbio);
    if (*cert_pem && *key_pem) ok = 0;
done:
    BIO_free(cbio);
    BIO_free(kbio);
    X509_free(cert);
    EVP_PKEY_free(key);
    return ok;
}
