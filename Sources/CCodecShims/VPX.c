/* Wrappers for libvpx's init and control macros: vpx_codec_enc_init and
   vpx_codec_dec_init are macros that pass the ABI version, and
   vpx_codec_control is a macro over the variadic vpx_codec_control_. */
#include "CCodecShims.h"
#include <vpx/vpx_encoder.h>
#include <vpx/vpx_decoder.h>
#include <vpx/vp8cx.h>
#include <vpx/vp8dx.h>

int CCodecShims_vp8_enc_config_default(void *config) {
    return (int)vpx_codec_enc_config_default(vpx_codec_vp8_cx(),
                                             (vpx_codec_enc_cfg_t *)config, 0);
}

int CCodecShims_vp8_enc_init(void *context, const void *config) {
    return (int)vpx_codec_enc_init((vpx_codec_ctx_t *)context, vpx_codec_vp8_cx(),
                                   (const vpx_codec_enc_cfg_t *)config, 0);
}

int CCodecShims_vp8_dec_init(void *context, unsigned int threads) {
    vpx_codec_dec_cfg_t config = { .threads = threads, .w = 0, .h = 0 };
    return (int)vpx_codec_dec_init((vpx_codec_ctx_t *)context, vpx_codec_vp8_dx(),
                                   &config, 0);
}

int CCodecShims_vpx_control_int(void *context, int control_id, int value) {
    return (int)vpx_codec_control_((vpx_codec_ctx_t *)context, control_id, value);
}

int CCodecShims_vpx_control_get_int(void *context, int control_id, int *value) {
    return (int)vpx_codec_control_((vpx_codec_ctx_t *)context, control_id, value);
}
