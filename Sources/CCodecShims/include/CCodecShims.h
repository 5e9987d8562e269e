#ifndef CCODECSHIMS_H
#define CCODECSHIMS_H
/* C wrappers for what Swift cannot call in libopus and libvpx: ctl/control functions are
   variadic and their requests, like the init calls, are function-like macros. Every symbol
   is prefixed CCodecShims_. */
#include <stdint.h>

/* libopus ctl requests (Opus.c). `encoder` is an OpusEncoder *; each returns
   the libopus error code, OPUS_OK (0) on success. */
int CCodecShims_opus_set_bitrate(void *encoder, int32_t bits_per_second);
int CCodecShims_opus_get_bitrate(void *encoder, int32_t *bits_per_second);
int CCodecShims_opus_set_inband_fec(void *encoder, int32_t enabled);
int CCodecShims_opus_set_packet_loss_percent(void *encoder, int32_t percent);
int CCodecShims_opus_set_dtx(void *encoder, int32_t enabled);
int CCodecShims_opus_set_complexity(void *encoder, int32_t complexity);
int CCodecShims_opus_set_signal_voice(void *encoder, int32_t voice);
int CCodecShims_opus_get_lookahead(void *encoder, int32_t *samples);
int CCodecShims_opus_get_in_dtx(void *encoder, int32_t *in_dtx);

/* libvpx VP8 init and controls (VPX.c). `context` is a vpx_codec_ctx_t *,
   `config` a vpx_codec_enc_cfg_t *; each returns a vpx_codec_err_t
   (VPX_CODEC_OK is 0). */
int CCodecShims_vp8_enc_config_default(void *config);
int CCodecShims_vp8_enc_init(void *context, const void *config);
int CCodecShims_vp8_dec_init(void *context, unsigned int threads);
int CCodecShims_vpx_control_int(void *context, int control_id, int value);
int CCodecShims_vpx_control_get_int(void *context, int control_id, int *value);

#endif
