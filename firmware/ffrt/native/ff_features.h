/* ffrt.features' window features and per-sample work in C (ffrt.features_viper's twins).
 *
 * Included by kernels_native.c: the native module carries them beside the kernels, so a
 * board with kernels_native.mpy computes its features natively too (ffrt.features picks
 * them, as its fast twin). Same bits as the reference (ffrt.features.channel_features,
 * Windower._sample): every bound is features' (sums below 2**23, squares below 2**28).
 */
#ifndef FFRT_FEATURES_H
#define FFRT_FEATURES_H

#include <stdint.h>

#include "kernels.h"  /* ff_isqrt, ff_clip_u8 */

#define FF_WINDOW 128
#define FF_CHANNELS 8

static int32_t ff_lag_sum(const int16_t *w, int lag) {
    int32_t t = 0;
    for (int i = lag; i < FF_WINDOW; i++) {
        int32_t d = (int32_t)w[i] - w[i - lag];
        t += d < 0 ? -d : d;
    }
    return t;
}

/* features of ring (8 channels x 128, channel-major, the oldest at head) into out[0:72];
 * w: 128 int16 of scratch; tab: shifts of mean, min, max, offsets, spread shifts (8 each) */
static void ff_window(const int16_t *ring, int16_t *w, int head, uint8_t *out,
                      const uint8_t *tab) {
    static const int lags[4] = {1, 4, 8, 16};
    for (int c = 0; c < FF_CHANNELS; c++) {
        const int16_t *r = ring + c * FF_WINDOW;
        int32_t s = 0, lo = r[head & 127], hi = lo;
        for (int i = 0; i < FF_WINDOW; i++) {
            int32_t x = r[(head + i) & 127];
            w[i] = (int16_t)x;
            s += x;
            if (x < lo)
                lo = x;
            else if (x > hi)
                hi = x;
        }
        int32_t m = s >> 7, dev = 0, cross = 0;
        int above = w[0] >= m;
        for (int i = 0; i < FF_WINDOW; i++) {
            int32_t d = w[i] - m;
            if (d < 0) {
                d = -d;
                if (above) {
                    cross++;
                    above = 0;
                }
            } else if (!above) {
                cross++;
                above = 1;
            }
            dev += d;
        }
        int k = tab[32 + c], off = tab[24 + c];
        uint8_t *o = out + 9 * c;
        o[0] = (uint8_t)ff_clip_u8((m >> tab[c]) + off);
        o[1] = (uint8_t)ff_clip_u8(ff_isqrt((dev >> 7) << k));
        o[2] = (uint8_t)ff_clip_u8((lo >> tab[8 + c]) + off);
        o[3] = (uint8_t)ff_clip_u8((hi >> tab[16 + c]) + off);
        for (int l = 0; l < 4; l++)
            o[4 + l] = (uint8_t)ff_clip_u8(ff_isqrt((ff_lag_sum(w, lags[l]) >> 7) << k));
        o[8] = (uint8_t)(cross << 1);
    }
}

/* one sample into ring r at position p: the six int16 values (the glue saturates what
 * the caller gave), then the magnitudes */
static void ff_sample(int16_t *r, int p, const int32_t *v) {
    int32_t a[6];
    for (int k = 0; k < 6; k++) {
        r[p + 128 * k] = (int16_t)v[k];
        a[k] = v[k] >> 2;
    }
    r[p + 768] = (int16_t)ff_isqrt(a[0] * a[0] + a[1] * a[1] + a[2] * a[2]);
    r[p + 896] = (int16_t)ff_isqrt(a[3] * a[3] + a[4] * a[4] + a[5] * a[5]);
}

/* k samples from src (six little-endian int16 each, read by bytes: any alignment) into
 * ring r from position p, wrapping at 128 */
static void ff_samples(int16_t *r, int p, const uint8_t *src, int k) {
    int32_t v[6];
    for (; k > 0; k--, src += 12, p = (p + 1) & 127) {
        for (int c = 0; c < 6; c++)
            v[c] = (int16_t)(uint16_t)(src[2 * c] | (src[2 * c + 1] << 8));
        ff_sample(r, p, v);
    }
}

#endif
