#include "COpenSSLShims.h"
#include <openssl/ssl.h>
#include <openssl/bio.h>

/* DTLS 1.2 over memory BIOs: the function-like macros of OpenSSL 3.0 that the
   Swift DTLS layer needs (Sources/DTLSSRTP/DTLS). */

int COpenSSLShims_DTLS_get_timeout(void *ssl, long *seconds, long *microseconds) {
    struct timeval tv = {0, 0};
    int running = (int)DTLSv1_get_timeout((SSL *)ssl, &tv);
    *seconds = (long)tv.tv_sec;
    *microseconds = (long)tv.tv_usec;
    return running;
}

int COpenSSLShims_DTLS_handle_timeout(void *ssl) {
    return (int)DTLSv1_handle_timeout((SSL *)ssl);
}

/* The retransmission timer of a handshake flight: 250 ms at first, doubled at each
   retransmission up to 60 s. RFC 6347 §4.2.4.1 recommends 1 s at first; on a call's path a lost
   flight then stalls call setup for a whole second (seen on the testnet's 5 % loss path), so we
   start shorter, as WebRTC stacks in browsers do. A spurious resend costs one duplicate flight,
   which the peer discards (§4.2.4). The 60 s ceiling is §4.2.4.1's. */
static unsigned int COpenSSLShims_DTLS_timer(SSL *ssl, unsigned int previous_us) {
    (void)ssl;
    if (previous_us == 0) return 250000;
    return previous_us >= 30000000 ? 60000000 : previous_us * 2;
}

void COpenSSLShims_DTLS_use_short_timer(void *ssl) {
    DTLS_set_timer_cb((SSL *)ssl, COpenSSLShims_DTLS_timer);
}

int COpenSSLShims_SSL_CTX_use_dtls12_only(void *ctx) {
    if (SSL_CTX_set_min_proto_version((SSL_CTX *)ctx, DTLS1_2_VERSION) != 1) return 0;
    return SSL_CTX_set_max_proto_version((SSL_CTX *)ctx, DTLS1_2_VERSION) == 1;
}

void COpenSSLShims_SSL_set_fixed_mtu(void *ssl, long mtu) {
    SSL_set_options((SSL *)ssl, SSL_OP_NO_QUERY_MTU);
    SSL_set_mtu((SSL *)ssl, mtu);
    DTLS_set_link_mtu((SSL *)ssl, mtu);
}

void COpenSSLShims_BIO_set_mem_eof_return(void *bio, int value) {
    BIO_set_mem_eof_return((BIO *)bio, value);
}

int COpenSSLShims_SSL_is_dtls12(const void *ssl) {
    return SSL_version((const SSL *)ssl) == DTLS1_2_VERSION;
}
