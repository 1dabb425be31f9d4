/* The kernels of ffrt.kernels_ref in C: one statement of them for every C build.
 *
 * Included by kernels_native.c (the MicroPython native module, one .mpy per board arch)
 * and by the host's ctypes twin (ffkit/twins/kernels_c.c). Plain C99, no MicroPython and
 * no libc: the same semantics as the reference, bit for bit. Weights are int8 stored
 * offset-binary (byte = weight + 128), activities uint8, the head int16, xorshift32 PRNG
 * states (hi, lo) uint16 pairs. Every sum stays below 2**30 (ffrt.model checks the
 * bounds when a net is built), so int32 holds it; `>>` of a negative int32 is arithmetic
 * on every compiler this is built with (gcc on x64, Arm, RISC-V).
 */
#ifndef FFRT_KERNELS_H
#define FFRT_KERNELS_H

#include <stdint.h>

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#include <arm_acle.h>
#define FF_DSP 1
#elif defined(__SSE2__)
#include <emmintrin.h>
#define FF_SSE2 1
#endif

#define FF_HEAD_W_MAX 4095  /* = ffrt.kernels_ref.HEAD_W_MAX (tests hold them equal) */

static inline uint32_t ff_xs32(uint32_t s) {
    s ^= s << 13;
    s ^= s >> 17;
    s ^= s << 5;
    return s;
}

static inline uint32_t ff_rng_get(const uint16_t *rng, int i) {
    return ((uint32_t)rng[2 * i] << 16) | rng[2 * i + 1];
}

static inline void ff_rng_put(uint16_t *rng, int i, uint32_t s) {
    rng[2 * i] = (uint16_t)(s >> 16);
    rng[2 * i + 1] = (uint16_t)(s & 0xFFFF);
}

/* floor(sqrt(n)) for 0 <= n < 2**30: kernels_ref.isqrt (ffrt.fixedpoint's bit-wise
 * restoring root) */
static inline int32_t ff_isqrt(int32_t n) {
    int32_t res = 0, bit = 1 << 28;
    while (bit > n)
        bit >>= 2;
    while (bit) {
        if (n >= res + bit) {
            n -= res + bit;
            res = (res >> 1) + bit;
        } else {
            res >>= 1;
        }
        bit >>= 2;
    }
    return res;
}

static inline int32_t ff_clip_u8(int32_t v) { return v < 0 ? 0 : (v > 255 ? 255 : v); }

/* sum(w[j] * x[j]) over unsigned bytes: < 255 * 255 * n < 2**30 for n < 16,500 */
static inline int32_t ff_dot_u8(const uint8_t *w, const uint8_t *x, int n) {
    uint32_t acc = 0;
    int j = 0;
#if defined(FF_DSP)
    /* Cortex-M4/M7: four bytes per word, split into halfword pairs (UXTB16) and two
     * multiply-accumulates per instruction (SMLAD); products <= 65025 fit its int16 lanes */
    for (; j + 4 <= n; j += 4) {
        uint32_t a, b;
        __builtin_memcpy(&a, w + j, 4);
        __builtin_memcpy(&b, x + j, 4);
        acc = (uint32_t)__smlad(__uxtb16(a), __uxtb16(b), (int32_t)acc);
        a = (a >> 8) | (a << 24);  /* bytes 1 and 3 (UXTB16 ... ROR #8) */
        b = (b >> 8) | (b << 24);
        acc = (uint32_t)__smlad(__uxtb16(a), __uxtb16(b), (int32_t)acc);
    }
#elif defined(FF_SSE2)
    /* x64 (the unix port): eight bytes at a time, widened to 16 bits, PMADDWD's pairwise
     * products summed into four int32 lanes (each below 2**30, as the whole sum) */
    __m128i z = _mm_setzero_si128(), s = z;
    for (; j + 8 <= n; j += 8) {
        __m128i a = _mm_unpacklo_epi8(_mm_loadl_epi64((const __m128i *)(w + j)), z);
        __m128i b = _mm_unpacklo_epi8(_mm_loadl_epi64((const __m128i *)(x + j)), z);
        s = _mm_add_epi32(s, _mm_madd_epi16(a, b));
    }
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    acc = (uint32_t)_mm_cvtsi128_si32(s);
#else
    /* eight at a time: two byte loads and a multiply-accumulate per MAC, the loop's own
     * count and branch spread over eight (Cortex-M3: 3.4 instructions per MAC) */
    for (; j + 8 <= n; j += 8)
        acc += (uint32_t)w[j] * x[j] + (uint32_t)w[j + 1] * x[j + 1]
               + (uint32_t)w[j + 2] * x[j + 2] + (uint32_t)w[j + 3] * x[j + 3]
               + (uint32_t)w[j + 4] * x[j + 4] + (uint32_t)w[j + 5] * x[j + 5]
               + (uint32_t)w[j + 6] * x[j + 6] + (uint32_t)w[j + 7] * x[j + 7];
#endif
    for (; j < n; j++)
        acc += (uint32_t)w[j] * x[j];
    return (int32_t)acc;
}

/* h[i] = clip((sum_j (w[i, j] - 128) * x[j]) >> shift, 0, 255); returns sum(h**2).
 * The offset is taken off once per row: sum((w - 128) * x) = sum(w * x) - 128 * sum(x). */
static int32_t ff_fc_relu(const uint8_t *w, const uint8_t *x, uint8_t *h, int n_in,
                          int n_out, int shift) {
    int32_t xsum = 0;
    for (int j = 0; j < n_in; j++)
        xsum += x[j];
    int32_t off = xsum << 7, g = 0;
    for (int i = 0; i < n_out; i++) {
        int32_t v = ff_clip_u8((ff_dot_u8(w, x, n_in) - off) >> shift);
        w += n_in;
        h[i] = (uint8_t)v;
        g += v * v;
    }
    return g;
}

/* acc[i] = sum_j (w[i, j] - 128) * x[j]: fc_relu's sums before the shift and the clip */
static void ff_fc_acc(const uint8_t *w, const uint8_t *x, int32_t *acc, int n_in, int n_out) {
    int32_t xsum = 0;
    for (int j = 0; j < n_in; j++)
        xsum += x[j];
    int32_t off = xsum << 7;
    for (int i = 0; i < n_out; i++, w += n_in)
        acc[i] = ff_dot_u8(w, x, n_in) - off;
}

/* the parameters label_relu, update and head_update read from an int32 array p
 * (ffrt.kernels_ref.P_*, U_*, H_*) */
enum { FF_P_N_IN, FF_P_N_OUT, FF_P_SHIFT, FF_P_COL, FF_P_STEP, FF_P_COUNT, FF_P_VALUE,
       FF_P_LEN };
enum { FF_U_N_IN, FF_U_N_OUT, FF_U_COEF, FF_U_SHIFT, FF_U_FLOOR, FF_U_LEN };
enum { FF_H_N_IN, FF_H_ROW, FF_H_COEF, FF_H_SHIFT, FF_H_LEN };

/* h[i] = clip((acc[i] + value * sum_r (w[i, col + r * step] - 128)) >> shift, 0, 255);
 * returns sum(h**2): one label's first-layer pass from the shared sums (fc_acc) */
static int32_t ff_label_relu(const uint8_t *w, const int32_t *acc, uint8_t *h,
                             const int32_t *p) {
    int n_in = p[FF_P_N_IN], n_out = p[FF_P_N_OUT], shift = p[FF_P_SHIFT];
    int step = p[FF_P_STEP], count = p[FF_P_COUNT];
    int32_t value = p[FF_P_VALUE], g = 0;
    const uint8_t *col = w + p[FF_P_COL];
    for (int i = 0; i < n_out; i++, col += n_in) {
        int32_t s = 0;
        for (int r = 0; r < count; r++)
            s += (int32_t)col[r * step] - 128;
        int32_t v = ff_clip_u8((acc[i] + value * s) >> shift);
        h[i] = (uint8_t)v;
        g += v * v;
    }
    return g;
}

/* out[i] = min(255, (h[i] * recip) >> 16); h[i] * recip < 2**30 (kernels_ref.normalize) */
static void ff_normalize(const uint8_t *h, uint8_t *out, int n, int32_t recip) {
    for (int i = 0; i < n; i++) {
        int32_t v = ((int32_t)h[i] * recip) >> 16;
        out[i] = (uint8_t)(v > 255 ? 255 : v);
    }
}

/* dst[0:n] = src[0:n] (the caller offsets src) */
static inline void ff_copy(uint8_t *dst, const uint8_t *src, int n) {
    for (int i = 0; i < n; i++)
        dst[i] = src[i];
}

/* W[i, j] += (coef * max(h[i], floor) * x[j] + r) >> shift, clipped to 1..255, r the top
 * `shift` bits of row i's next xorshift32 draw, one draw per (i, j) with both non-zero */
static void ff_update(uint8_t *w, const uint8_t *x, const uint8_t *h, int n_in, int n_out,
                      int32_t coef, int shift, uint16_t *rng, int floor) {
    if (coef == 0)
        return;
    int rs = 32 - shift;
    for (int i = 0; i < n_out; i++, w += n_in) {
        int32_t hi = h[i];
        if (hi < floor)
            hi = floor;
        if (!hi)
            continue;
        int32_t c = coef * hi;
        uint32_t s = ff_rng_get(rng, i);
        for (int j = 0; j < n_in; j++) {
            int32_t xj = x[j];
            if (xj) {
                s = ff_xs32(s);
                int32_t v = (int32_t)w[j] + ((c * xj + (int32_t)(s >> rs)) >> shift);
                w[j] = (uint8_t)(v < 1 ? 1 : (v > 255 ? 255 : v));
            }
        }
        ff_rng_put(rng, i, s);
    }
}

/* scores[c] = sum_k wh[c, k] * a[k]; |score| < 2**29 (HEAD_W_MAX) */
static void ff_head_scores(const int16_t *wh, const uint8_t *a, int n_in, int n_out,
                           int32_t *scores) {
    for (int c = 0; c < n_out; c++, wh += n_in) {
        int32_t s = 0;
        for (int k = 0; k < n_in; k++)
            s += (int32_t)wh[k] * a[k];
        scores[c] = s;
    }
}

/* wh[row, k] += (coef * a[k] + r) >> shift, clipped to +-HEAD_W_MAX; r from rng[0:2] */
static void ff_head_update(int16_t *wh, const uint8_t *a, int n_in, int row, int32_t coef,
                           int shift, uint16_t *rng) {
    int16_t *r = wh + row * n_in;
    int rs = 32 - shift;
    uint32_t s = ff_rng_get(rng, 0);
    for (int k = 0; k < n_in; k++) {
        int32_t ak = a[k];
        if (ak) {
            s = ff_xs32(s);
            int32_t v = (int32_t)r[k] + ((coef * ak + (int32_t)(s >> rs)) >> shift);
            r[k] = (int16_t)(v < -FF_HEAD_W_MAX ? -FF_HEAD_W_MAX
                             : (v > FF_HEAD_W_MAX ? FF_HEAD_W_MAX : v));
        }
    }
    ff_rng_put(rng, 0, s);
}

#endif
