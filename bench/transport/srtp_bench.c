/* SRTP protect+unprotect throughput, one core: libsrtp2 (Debian's, NSS-backed) against SRTP
 * done with OpenSSL EVP directly (AES-128-CTR + HMAC-SHA1-80 per RFC 3711 §4, AES-128-GCM per
 * RFC 7714 §8), in the same run, same packets.
 *
 * The EVP implementation is checked against libsrtp2 before it is timed: packets it protects
 * must unprotect with libsrtp2 to the same bytes and the other way round, so both columns do
 * the same work. Only what a media sender/receiver does per packet is timed (protect, then
 * unprotect with tag check); key derivation happens once.
 *
 * Output: one JSON object per line, {"impl", "profile", "size", "packets", "cpu_s", "pps"}.
 * Usage: srtp_bench [seconds-per-case]   (default 1.0)
 */
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <srtp2/srtp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum profile { CM80, GCM128 };
static const char *profile_name[] = {"SRTP_AES128_CM_SHA1_80", "SRTP_AEAD_AES_128_GCM"};

static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what) {
    fprintf(stderr, "srtp_bench: %s\n", what);
    exit(1);
}

/* ---------------------------------------------------------------- OpenSSL EVP SRTP */

struct evp_srtp {
    enum profile profile;
    uint8_t enc_key[16], salt[14], auth_key[20];
    EVP_CIPHER_CTX *cipher;
    EVP_MAC_CTX *mac; /* HMAC-SHA1 keyed once, re-initialised per packet */
};

/* RFC 3711 §4.3.1 with key_derivation_rate 0: x = (label << 48) XOR master_salt, and the
 * AES-CM keystream under the master key with IV = x * 2^16 is the derived key. For GCM the
 * 96-bit master salt is padded with zeros to 112 bits (RFC 7714 §11, as libsrtp2 does). */
static void derive(const uint8_t *master_key, const uint8_t *master_salt, size_t salt_len,
                   uint8_t label, uint8_t *out, size_t out_len) {
    uint8_t iv[16] = {0}, zeros[32] = {0};
    memcpy(iv, master_salt, salt_len);
    iv[7] ^= label;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int len = 0;
    if (!ctx || EVP_EncryptInit_ex(ctx, EVP_aes_128_ctr(), NULL, master_key, iv) != 1 ||
        EVP_EncryptUpdate(ctx, out, &len, zeros, (int)out_len) != 1)
        die("EVP key derivation failed");
    EVP_CIPHER_CTX_free(ctx);
}

static void evp_init(struct evp_srtp *s, enum profile p, const uint8_t *key_and_salt) {
    memset(s, 0, sizeof *s);
    s->profile = p;
    size_t salt_len = p == CM80 ? 14 : 12;
    derive(key_and_salt, key_and_salt + 16, salt_len, 0, s->enc_key, 16);
    derive(key_and_salt, key_and_salt + 16, salt_len, 2, s->salt, salt_len);
    s->cipher = EVP_CIPHER_CTX_new();
    if (!s->cipher) die("EVP_CIPHER_CTX_new");
    if (p == CM80) {
        derive(key_and_salt, key_and_salt + 16, salt_len, 1, s->auth_key, 20);
        if (EVP_EncryptInit_ex(s->cipher, EVP_aes_128_ctr(), NULL, s->enc_key, NULL) != 1) die("ctr init");
        EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
        s->mac = EVP_MAC_CTX_new(mac);
        EVP_MAC_free(mac);
        OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA1", 0), OSSL_PARAM_construct_end()};
        if (!s->mac || EVP_MAC_init(s->mac, s->auth_key, 20, params) != 1) die("HMAC init");
    } else {
        if (EVP_CipherInit_ex(s->cipher, EVP_aes_128_gcm(), NULL, s->enc_key, NULL, 1) != 1) die("gcm init");
    }
}

static void evp_free(struct evp_srtp *s) {
    EVP_CIPHER_CTX_free(s->cipher);
    EVP_MAC_CTX_free(s->mac);
}

/* RFC 3711 §4.2: HMAC-SHA1(auth_key, header || encrypted payload || ROC), first 10 bytes. */
static void cm_tag(struct evp_srtp *s, const uint8_t *packet, size_t len, uint32_t roc, uint8_t *tag) {
    uint8_t full[EVP_MAX_MD_SIZE], roc_be[4] = {roc >> 24, roc >> 16, roc >> 8, roc};
    size_t out = 0;
    if (EVP_MAC_init(s->mac, NULL, 0, NULL) != 1 || EVP_MAC_update(s->mac, packet, len) != 1 ||
        EVP_MAC_update(s->mac, roc_be, 4) != 1 || EVP_MAC_final(s->mac, full, &out, sizeof full) != 1)
        die("HMAC");
    memcpy(tag, full, 10);
}

/* In place; `len` is the RTP packet (12-byte header, no CSRC/extension here); returns the
 * SRTP length. ROC 0: the benchmark's sequence numbers never wrap. */
static int evp_protect(struct evp_srtp *s, uint8_t *packet, int len) {
    uint32_t ssrc = (uint32_t)packet[8] << 24 | packet[9] << 16 | packet[10] << 8 | packet[11];
    uint16_t seq = (uint16_t)(packet[2] << 8 | packet[3]);
    int out = 0;
    if (s->profile == CM80) {
        /* RFC 3711 §4.1.1: IV = (k_s * 2^16) XOR (SSRC * 2^64) XOR (i * 2^16). */
        uint8_t iv[16] = {0};
        memcpy(iv, s->salt, 14);
        iv[4] ^= ssrc >> 24; iv[5] ^= ssrc >> 16; iv[6] ^= ssrc >> 8; iv[7] ^= ssrc;
        iv[12] ^= seq >> 8; iv[13] ^= seq;
        if (EVP_EncryptInit_ex(s->cipher, NULL, NULL, NULL, iv) != 1 ||
            EVP_EncryptUpdate(s->cipher, packet + 12, &out, packet + 12, len - 12) != 1)
            die("ctr");
        cm_tag(s, packet, (size_t)len, 0, packet + len);
        return len + 10;
    }
    /* RFC 7714 §8.1: IV = (0x0000 || SSRC || ROC || SEQ) XOR salt; the header is the AAD. */
    uint8_t iv[12] = {0, 0, ssrc >> 24, ssrc >> 16, ssrc >> 8, ssrc, 0, 0, 0, 0, seq >> 8, seq};
    for (int i = 0; i < 12; i++) iv[i] ^= s->salt[i];
    if (EVP_EncryptInit_ex(s->cipher, NULL, NULL, NULL, iv) != 1 ||
        EVP_EncryptUpdate(s->cipher, NULL, &out, packet, 12) != 1 ||
        EVP_EncryptUpdate(s->cipher, packet + 12, &out, packet + 12, len - 12) != 1 ||
        EVP_EncryptFinal_ex(s->cipher, packet + len, &out) != 1 ||
        EVP_CIPHER_CTX_ctrl(s->cipher, EVP_CTRL_GCM_GET_TAG, 16, packet + len) != 1)
        die("gcm encrypt");
    return len + 16;
}

/* Returns the RTP length, or -1 when the tag does not verify. */
static int evp_unprotect(struct evp_srtp *s, uint8_t *packet, int len) {
    uint32_t ssrc = (uint32_t)packet[8] << 24 | packet[9] << 16 | packet[10] << 8 | packet[11];
    uint16_t seq = (uint16_t)(packet[2] << 8 | packet[3]);
    int out = 0;
    if (s->profile == CM80) {
        int body = len - 10;
        if (body < 12) return -1;
        uint8_t tag[10];
        cm_tag(s, packet, (size_t)body, 0, tag);
        if (CRYPTO_memcmp(tag, packet + body, 10) != 0) return -1;
        uint8_t iv[16] = {0};
        memcpy(iv, s->salt, 14);
        iv[4] ^= ssrc >> 24; iv[5] ^= ssrc >> 16; iv[6] ^= ssrc >> 8; iv[7] ^= ssrc;
        iv[12] ^= seq >> 8; iv[13] ^= seq;
        if (EVP_DecryptInit_ex(s->cipher, NULL, NULL, NULL, iv) != 1 ||
            EVP_DecryptUpdate(s->cipher, packet + 12, &out, packet + 12, body - 12) != 1)
            die("ctr");
        return body;
    }
    int body = len - 16;
    if (body < 12) return -1;
    uint8_t iv[12] = {0, 0, ssrc >> 24, ssrc >> 16, ssrc >> 8, ssrc, 0, 0, 0, 0, seq >> 8, seq};
    for (int i = 0; i < 12; i++) iv[i] ^= s->salt[i];
    if (EVP_DecryptInit_ex(s->cipher, NULL, NULL, NULL, iv) != 1 ||
        EVP_DecryptUpdate(s->cipher, NULL, &out, packet, 12) != 1 ||
        EVP_DecryptUpdate(s->cipher, packet + 12, &out, packet + 12, body - 12) != 1 ||
        EVP_CIPHER_CTX_ctrl(s->cipher, EVP_CTRL_GCM_SET_TAG, 16, packet + body) != 1)
        die("gcm decrypt");
    if (EVP_DecryptFinal_ex(s->cipher, packet + body, &out) != 1) return -1;
    return body;
}

/* ---------------------------------------------------------------- libsrtp2 */

static srtp_t make_libsrtp(enum profile p, const uint8_t *key_and_salt, int outbound) {
    srtp_policy_t policy;
    memset(&policy, 0, sizeof policy);
    if (p == CM80) {
        srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&policy.rtp);
        srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&policy.rtcp);
    } else {
        srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy.rtp);
        srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy.rtcp);
    }
    policy.ssrc.type = outbound ? ssrc_any_outbound : ssrc_any_inbound;
    policy.key = (unsigned char *)key_and_salt;
    policy.window_size = 1024;
    srtp_t session = NULL;
    if (srtp_create(&session, &policy) != srtp_err_status_ok) die("srtp_create");
    return session;
}

/* ---------------------------------------------------------------- driver */

static void fill_rtp(uint8_t *packet, int len, uint16_t seq) {
    packet[0] = 0x80; packet[1] = 111;
    packet[2] = seq >> 8; packet[3] = seq;
    packet[4] = 0; packet[5] = 0; packet[6] = seq >> 8; packet[7] = seq;
    packet[8] = 0x12; packet[9] = 0x34; packet[10] = 0x56; packet[11] = 0x78;
    for (int i = 12; i < len; i++) packet[i] = (uint8_t)(i * 7 + seq);
}

/* Both implementations must agree byte for byte, in both directions. */
static void cross_check(enum profile p, const uint8_t *key, int size) {
    struct evp_srtp evp_out, evp_in;
    evp_init(&evp_out, p, key);
    evp_init(&evp_in, p, key);
    srtp_t lib_out = make_libsrtp(p, key, 1), lib_in = make_libsrtp(p, key, 0);
    uint8_t a[2048], b[2048], clear[2048];
    for (uint16_t seq = 1; seq <= 50; seq++) {
        fill_rtp(clear, size, seq);
        memcpy(a, clear, size);
        memcpy(b, clear, size);
        int la = evp_protect(&evp_out, a, size);
        int lb = size;
        if (srtp_protect(lib_out, b, &lb) != srtp_err_status_ok) die("srtp_protect");
        if (la != lb || memcmp(a, b, la) != 0) die("EVP and libsrtp2 produce different SRTP packets");
        if (srtp_unprotect(lib_in, a, &la) != srtp_err_status_ok || la != size || memcmp(a, clear, size) != 0)
            die("libsrtp2 cannot unprotect what EVP protected");
        if (evp_unprotect(&evp_in, b, lb) != size || memcmp(b, clear, size) != 0)
            die("EVP cannot unprotect what libsrtp2 protected");
    }
    /* A flipped bit must fail. */
    fill_rtp(a, size, 99);
    int la = evp_protect(&evp_out, a, size);
    a[20] ^= 1;
    if (evp_unprotect(&evp_in, a, la) != -1) die("EVP accepted a tampered packet");
    evp_free(&evp_out);
    evp_free(&evp_in);
    srtp_dealloc(lib_out);
    srtp_dealloc(lib_in);
}

static void report(const char *impl, enum profile p, int size, long packets, double cpu) {
    printf("{\"impl\": \"%s\", \"profile\": \"%s\", \"size\": %d, \"packets\": %ld, \"cpu_s\": %.4f, \"pps\": %.0f}\n",
           impl, profile_name[p], size, packets, cpu, packets / cpu);
    fflush(stdout);
}

static void bench_libsrtp(enum profile p, const uint8_t *key, int size, double seconds) {
    srtp_t out = make_libsrtp(p, key, 1), in = make_libsrtp(p, key, 0);
    uint8_t packet[2048];
    long n = 0;
    double start = cpu_now(), now = start;
    /* 65,000 packets per SSRC keep sequence numbers from wrapping (ROC stays 0, like EVP). */
    uint32_t ssrc = 1;
    while (now - start < seconds) {
        for (int i = 0; i < 1000; i++, n++) {
            uint16_t seq = (uint16_t)(n % 65000 + 1);
            if (seq == 1) ssrc++;
            fill_rtp(packet, size, seq);
            packet[8] = ssrc >> 24; packet[9] = ssrc >> 16; packet[10] = ssrc >> 8; packet[11] = ssrc;
            int len = size;
            if (srtp_protect(out, packet, &len) != srtp_err_status_ok) die("srtp_protect");
            if (srtp_unprotect(in, packet, &len) != srtp_err_status_ok || len != size) die("srtp_unprotect");
        }
        now = cpu_now();
    }
    report("libsrtp2", p, size, n, now - start);
    srtp_dealloc(out);
    srtp_dealloc(in);
}

static void bench_evp(enum profile p, const uint8_t *key, int size, double seconds) {
    struct evp_srtp out, in;
    evp_init(&out, p, key);
    evp_init(&in, p, key);
    uint8_t packet[2048];
    long n = 0;
    double start = cpu_now(), now = start;
    while (now - start < seconds) {
        for (int i = 0; i < 1000; i++, n++) {
            fill_rtp(packet, size, (uint16_t)(n % 65000 + 1));
            int len = evp_protect(&out, packet, size);
            if (evp_unprotect(&in, packet, len) != size) die("EVP unprotect");
        }
        now = cpu_now();
    }
    report("openssl-evp", p, size, n, now - start);
    evp_free(&out);
    evp_free(&in);
}

int main(int argc, char **argv) {
    double seconds = argc > 1 ? atof(argv[1]) : 1.0;
    if (srtp_init() != srtp_err_status_ok) die("srtp_init");
    uint8_t key[30];
    for (int i = 0; i < 30; i++) key[i] = (uint8_t)(i * 13 + 5);
    int sizes[] = {160, 1200};
    for (int p = CM80; p <= GCM128; p++)
        for (int s = 0; s < 2; s++) cross_check((enum profile)p, key, sizes[s]);
    fprintf(stderr, "srtp_bench: EVP SRTP matches libsrtp2 byte for byte (both profiles, both sizes)\n");
    for (int p = CM80; p <= GCM128; p++)
        for (int s = 0; s < 2; s++) {
            bench_libsrtp((enum profile)p, key, sizes[s], seconds);
            bench_evp((enum profile)p, key, sizes[s], seconds);
        }
    return 0;
}
