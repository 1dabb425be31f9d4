/* C twins of ffrt.kernels_ref for the host (ffkit.kernels_c loads this through ctypes).
 *
 * The same semantics as the reference kernels, bit for bit: int8 weights stored
 * offset-binary (byte = weight + 128), uint8 activities, int16 head, xorshift32 PRNG
 * states kept as (hi, lo) uint16 pairs. Every sum is an integer below 2**30 (ffrt.model's
 * bounds), so int32 holds it; the rounding term and shifts are those of kernels_ref.
 * goodness_labels is the composite ffrt.net uses on the host: every label's forward pass
 * of one sample, with the first layer's products over the features formed once.
 */
#include <stdint.h>

static inline uint32_t xs32(uint32_t s) {
    s ^= s << 13;
    s ^= s >> 17;
    s ^= s << 5;
    return s;
}

static inline uint32_t rng_get(const uint16_t *rng, int i) {
    return ((uint32_t)rng[2 * i] << 16) | rng[2 * i + 1];
}

static inline void rng_put(uint16_t *rng, int i, uint32_t s) {
    rng[2 * i] = (uint16_t)(s >> 16);
    rng[2 * i + 1] = (uint16_t)(s & 0xFFFF);
}

/* the top k bits of a 32-bit state (ffrt.fixedpoint.top_bits), 1 <= k <= 28 */
static inline int32_t top(uint32_t s, int k) { return (int32_t)(s >> (32 - k)); }

static inline int32_t clip_u8(int32_t v) { return v < 0 ? 0 : (v > 255 ? 255 : v); }

int32_t fc_relu(const uint8_t *w, const uint8_t *x, uint8_t *h, int n_in, int n_out,
                int shift) {
    int32_t g = 0;
    for (int i = 0; i < n_out; i++) {
        const uint8_t *row = w + (long)i * n_in;
        int32_t acc = 0;
        for (int j = 0; j < n_in; j++)
            acc += ((int32_t)row[j] - 128) * (int32_t)x[j];
        int32_t v = clip_u8(acc >> shift);
        h[i] = (uint8_t)v;
        g += v * v;
    }
    return g;
}

void normalize(const uint8_t *h, uint8_t *out, int n, int32_t recip) {
    for (int i = 0; i < n; i++) {
        int32_t v = (int32_t)(((int64_t)h[i] * recip) >> 16);
        out[i] = (uint8_t)(v > 255 ? 255 : v);
    }
}

void update(uint8_t *w, const uint8_t *x, const uint8_t *h, int n_in, int n_out,
            int32_t coef, int shift, uint16_t *rng, int floor) {
    if (coef == 0)
        return;
    for (int i = 0; i < n_out; i++) {
        int32_t hi = h[i];
        if (hi < floor)
            hi = floor;
        if (!hi)
            continue;
        int32_t c = coef * hi;
        uint8_t *row = w + (long)i * n_in;
        uint32_t s = rng_get(rng, i);
        for (int j = 0; j < n_in; j++) {
            int32_t xj = x[j];
            if (xj) {
                s = xs32(s);
                int32_t v = (int32_t)row[j] + ((c * xj + top(s, shift)) >> shift);
                row[j] = (uint8_t)(v < 1 ? 1 : (v > 255 ? 255 : v));
            }
        }
        rng_put(rng, i, s);
    }
}

void head_scores(const int16_t *wh, const uint8_t *a, int n_in, int n_out,
                 int32_t *scores) {
    for (int c = 0; c < n_out; c++) {
        const int16_t *row = wh + (long)c * n_in;
        int32_t s = 0;
        for (int k = 0; k < n_in; k++)
            s += (int32_t)row[k] * (int32_t)a[k];
        scores[c] = s;
    }
}

void head_update(int16_t *wh, const uint8_t *a, int n_in, int row, int32_t coef,
                 int shift, uint16_t *rng, int w_max) {
    int16_t *r = wh + (long)row * n_in;
    uint32_t s = rng_get(rng, 0);
    for (int k = 0; k < n_in; k++) {
        int32_t ak = a[k];
        if (ak) {
            s = xs32(s);
            int32_t v = (int32_t)r[k] + ((coef * ak + top(s, shift)) >> shift);
            r[k] = (int16_t)(v < -w_max ? -w_max : (v > w_max ? w_max : v));
        }
    }
    rng_put(rng, 0, s);
}

/* floor(sqrt(n)) for 0 <= n < 2**30: ffrt.fixedpoint.isqrt */
static int32_t isqrt(int32_t n) {
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

/* out[c] = total goodness (layers from goodness_from on) of the sample with label c
 * overlaid (label_repeat = rep times), for every label: FFNet._forward(c) for each c.
 * inputs[l] is the buffer layer
 * l reads (inputs[0] = the net's _x: features, label, recurrent state); of it, only what
 * does not depend on the label is read: inputs[0] but its label part, and in a recurrent
 * model the tail of inputs[l] past n_out[l - 1] (the state). Those products are formed
 * once, into base (sum of n_out int32s); h, nv and nv2 (max width bytes) are scratch. */
void goodness_labels(int n_layers, uint8_t *const *weights, const int32_t *n_in,
                     const int32_t *n_out, const int32_t *shift, uint8_t *const *inputs,
                     int nf, int nc, int rep, int label_value, int norm_target,
                     int goodness_from,
                     int32_t *out, int32_t *base, uint8_t *h, uint8_t *nv, uint8_t *nv2) {
    int32_t *b = base;
    for (int l = 0; l < n_layers; l++) {
        const uint8_t *w = weights[l], *x = inputs[l];
        int from = l ? n_out[l - 1] : 0;  /* layer 0: every column but the label's */
        for (int i = 0; i < n_out[l]; i++) {
            const uint8_t *row = w + (long)i * n_in[l];
            int32_t acc = 0;
            for (int j = from; j < n_in[l]; j++)
                if (l || j < nf || j >= nf + rep * nc)
                    acc += ((int32_t)row[j] - 128) * (int32_t)x[j];
            b[i] = acc;
        }
        b += n_out[l];
    }
    const uint8_t *w0 = weights[0];
    int n0 = n_out[0], in0 = n_in[0];
    for (int c = 0; c < nc; c++) {
        int32_t total = 0, g = 0;
        for (int i = 0; i < n0; i++) {
            const uint8_t *lab = w0 + (long)i * in0 + nf + c;
            int32_t wsum = 0;
            for (int r = 0; r < rep; r++)
                wsum += (int32_t)lab[r * nc] - 128;
            int32_t acc = base[i] + wsum * label_value;
            int32_t v = clip_u8(acc >> shift[0]);
            h[i] = (uint8_t)v;
            g += v * v;
        }
        if (goodness_from <= 0)
            total += g;
        b = base + n0;
        for (int l = 1; l < n_layers; l++) {
            int32_t norm = isqrt(g);
            int32_t recip = norm ? (norm_target << 16) / norm : 0;
            uint8_t *inp = (l & 1) ? nv : nv2;
            int nb = n_out[l - 1];
            normalize(h, inp, nb, recip);
            const uint8_t *w = weights[l];
            g = 0;
            for (int i = 0; i < n_out[l]; i++) {
                const uint8_t *row = w + (long)i * n_in[l];
                int32_t acc = b[i];
                for (int j = 0; j < nb; j++)
                    acc += ((int32_t)row[j] - 128) * (int32_t)inp[j];
                int32_t v = clip_u8(acc >> shift[l]);
                h[i] = (uint8_t)v;
                g += v * v;
            }
            b += n_out[l];
            if (l >= goodness_from)
                total += g;
        }
        out[c] = total;
    }
}
