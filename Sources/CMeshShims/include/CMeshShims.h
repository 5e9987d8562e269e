#ifndef CMESHSHIMS_H
#define CMESHSHIMS_H
/* C wrappers for what Swift cannot call directly: function-like macros and
   variadic functions of our C libraries. Every symbol is prefixed CMeshShims_. */
#include <stddef.h>

/* Creates a self-signed ECDSA P-256 certificate (CN = common_name, valid for
   `days`) and returns it and its private key as PEM strings allocated with
   malloc; the caller frees both. Returns 0 on success, -1 on failure. */
int CMeshShims_self_signed_pem(const char *common_name, int days,
                               char **cert_pem, char **key_pem);

/* GObject property setters for libnice's NiceAgent (g_object_set is variadic).
   `object` is a GObject*; `property` must name a property of that type and
   value type, or GLib logs a critical warning and ignores the call. */
void CMeshShims_object_set_bool(void *object, const char *property, int value);
void CMeshShims_object_set_uint(void *object, const char *property, unsigned int value);
void CMeshShims_object_set_string(void *object, const char *property, const char *value);
#include <stdint.h>

/* libopus ctl requests (Opus.c). `encoder` is an OpusEncoder *; each returns
   the libopus error code, OPUS_OK (0) on success. */
int CMeshShims_opus_set_bitrate(void *encoder, int32_t bits_per_second);
int CMeshShims_opus_get_bitrate(void *encoder, int32_t *bits_per_second);
int CMeshShims_opus_set_inband_fec(void *encoder, int32_t enabled);
int CMeshShims_opus_set_packet_loss_percent(void *encoder, int32_t percent);
int CMeshShims_opus_set_dtx(void *encoder, int32_t enabled);
int CMeshShims_opus_set_complexity(void *encoder, int32_t complexity);
int CMeshShims_opus_set_signal_voice(void *encoder, int32_t voice);
int CMeshShims_opus_get_lookahead(void *encoder, int32_t *samples);
int CMeshShims_opus_get_in_dtx(void *encoder, int32_t *in_dtx);

/* libvpx VP8 init and controls (VPX.c). `context` is a vpx_codec_ctx_t *,
   `config` a vpx_codec_enc_cfg_t *; each returns a vpx_codec_err_t
   (VPX_CODEC_OK is 0). */
int CMeshShims_vp8_enc_config_default(void *config);
int CMeshShims_vp8_enc_init(void *context, const void *config);
int CMeshShims_vp8_dec_init(void *context, unsigned int threads);
int CMeshShims_vpx_control_int(void *context, int control_id, int value);
int CMeshShims_vpx_control_get_int(void *context, int control_id, int *value);

/* DTLS over memory BIOs (DTLS.c). `ssl` is an SSL *, `ctx` an SSL_CTX *,
   `bio` a BIO *. */
/* DTLSv1_get_timeout: 1 and the time left while a retransmission timer runs, else 0. */
int CMeshShims_DTLS_get_timeout(void *ssl, long *seconds, long *microseconds);
/* DTLSv1_handle_timeout: 1 if a flight was retransmitted, 0 if nothing was due, -1 on error. */
int CMeshShims_DTLS_handle_timeout(void *ssl);
/* Restricts the context to DTLS 1.2 (min and max protocol version). Returns 1 on success. */
int CMeshShims_SSL_CTX_use_dtls12_only(void *ctx);
/* Sets a fixed path MTU (no kernel query: the BIO is memory). */
void CMeshShims_SSL_set_fixed_mtu(void *ssl, long mtu);
/* BIO_set_mem_eof_return: -1 makes an empty memory BIO "retry" instead of EOF. */
void CMeshShims_BIO_set_mem_eof_return(void *bio, int value);
/* 1 when the negotiated protocol is DTLS 1.2. */
int CMeshShims_SSL_is_dtls12(const void *ssl);

#endif
