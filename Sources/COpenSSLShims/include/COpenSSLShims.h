#ifndef COPENSSLSHIMS_H
#define COPENSSLSHIMS_H
/* C wrappers for OpenSSL's function-like macros. Every symbol is prefixed COpenSSLShims_. */
#include <stddef.h>

/* Creates a self-signed ECDSA P-256 certificate (CN = common_name, valid for
   `days`) and returns it and its private key as PEM strings allocated with
   malloc; the caller frees both. Returns 0 on success, -1 on failure. */
int COpenSSLShims_self_signed_pem(const char *common_name, int days,
                                  char **cert_pem, char **key_pem);
/* As above, with a subjectAltName extension in OpenSSL's config form ("DNS:a.example,IP:192.0.2.1"). */
int COpenSSLShims_self_signed_pem_san(const char *common_name, const char *subject_alt_name, int days,
                                      char **cert_pem, char **key_pem);

/* DTLS over memory BIOs (DTLS.c). `ssl` is an SSL *, `ctx` an SSL_CTX *,
   `bio` a BIO *. */
/* DTLSv1_get_timeout: 1 and the time left while a retransmission timer runs, else 0. */
int COpenSSLShims_DTLS_get_timeout(void *ssl, long *seconds, long *microseconds);
/* DTLSv1_handle_timeout: 1 if a flight was retransmitted, 0 if nothing was due, -1 on error. */
int COpenSSLShims_DTLS_handle_timeout(void *ssl);
/* Retransmission timer of 250 ms doubling up to 60 s instead of OpenSSL's 1 s (DTLS.c says why). */
void COpenSSLShims_DTLS_use_short_timer(void *ssl);
/* Restricts the context to DTLS 1.2 (min and max protocol version). Returns 1 on success. */
int COpenSSLShims_SSL_CTX_use_dtls12_only(void *ctx);
/* Sets a fixed path MTU (no kernel query: the BIO is memory). */
void COpenSSLShims_SSL_set_fixed_mtu(void *ssl, long mtu);
/* BIO_set_mem_eof_return: -1 makes an empty memory BIO "retry" instead of EOF. */
void COpenSSLShims_BIO_set_mem_eof_return(void *bio, int value);
/* 1 when the negotiated protocol is DTLS 1.2. */
int COpenSSLShims_SSL_is_dtls12(const void *ssl);

#endif
