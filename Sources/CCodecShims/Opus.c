/* Wrappers for libopus's ctl macros: opus_encoder_ctl and opus_decoder_ctl are
   variadic and their requests are function-like macros, neither of which Swift
   can call. Each wrapper returns libopus's error code (OPUS_OK is 0). */
#include "CCodecShims.h"
#include <opus/opus.h>

int CCodecShims_opus_set_bitrate(void *encoder, int32_t bits_per_second) {
    return opus_encoder_ctl((OpusEncoder *)encoder, OPUS_SET_BITRATE(bits_per_second));
}

int CCodecShims_opus_get_bitrate(void *encoder, int32_t *bits_per_second) {
    opus_int32 value = 0;
    int rc = opus_encoder_ctl((OpusEncoder *)encoder, OPUS_GET_BITRATE(&value));
    *bits_per_second = value;
    return rc;
}

int CCodecShims_opus_set_inband_fec(void *encoder, int32_t enabled) {
    return opus_encoder_ctl((OpusEncoder *)encoder, OPUS_SET_INBAND_FEC(enabled));
}

int CCodecShims_opus_set_packet_loss_percent(void *encoder, int32_t percent) {
    return opus_encoder_ctl((OpusEncoder *)encoder, OPUS_SET_PACKET_LOSS_PERC(percent));
}

int CCodecShims_opus_set_dtx(void *encoder, int32_t enabled) {
    return opus_encoder_ctl((OpusEncoder *)encoder, OPUS_SET_DTX(enabled));
}

int CCodecShims_opus_set_complexity(void *encoder, int32_t complexity) {
    return opus_encoder_ctl((OpusEncoder *)encoder, OPUS_SET_COMPLEXITY(complexity));
}

int CCodecShims_opus_set_signal_voice(void *encoder, int32_t voice) {
    return opus_encoder_ctl((OpusEncoder *)encoder,
                            OPUS_SET_SIGNAL(voice ? OPUS_SIGNAL_VOICE : OPUS_SIGNAL_MUSIC));
}

int CCodecShims_opus_get_lookahead(void *encoder, int32_t *samples) {
    opus_int32 value = 0;
    int rc = opus_encoder_ctl((OpusEncoder *)encoder, OPUS_GET_LOOKAHEAD(&value));
    *samples = value;
    return rc;
}

int CCodecShims_opus_get_in_dtx(void *encoder, int32_t *in_dtx) {
    opus_int32 value = 0;
    int rc = opus_encoder_ctl((OpusEncoder *)encoder, OPUS_GET_IN_DTX(&value));
    *in_dtx = value;
    return rc;
}
