/* C twins of ffrt.kernels_ref for the host (ffkit.twins.kernels_c loads this through ctypes).
 *
 * The kernels themselves are ffrt's C kernels (firmware/ffrt/native/kernels.h, the same
 * loops the boards' native module runs), exported here under the reference's names.
 * goodness_labels is the composite ffrt.net uses on the host: every label's forward pass
 * of one sample, with the first layer's products over the features formed once.
 */
#include "kernels.h"

int32_t fc_relu(const uint8_t *w, const uint8_t *x, uint8_t *h, int n_in, int n_out,
                int shift) {
    return ff_fc_relu(w, x, h, n_in, n_out, shift);
}

void fc_acc(const uint8_t *w, const uint8_t *x, int32_t *acc, int n_in, int n_out) {
    ff_fc_acc(w, x, acc, n_in, n_out);
}

int32_t label_relu(const uint8_t *w, const int32_t *acc, uint8_t *h, const int32_t *p) {
    return ff_label_relu(w, acc, h, p);
}

void normalize(const uint8_t *h, uint8_t *out, int n, int32_t recip) {
    ff_normalize(h, out, n, recip);
}

void update(uint8_t *w, const uint8_t *x, const uint8_t *h, uint16_t *rng, const int32_t *p) {
    ff_update(w, x, h, p[FF_U_N_IN], p[FF_U_N_OUT], p[FF_U_COEF], p[FF_U_SHIFT], rng,
              p[FF_U_FLOOR]);
}

void head_scores(const int16_t *wh, const uint8_t *a, int n_in, int n_out,
                 int32_t *scores) {
    ff_head_scores(wh, a, n_in, n_out, scores);
}

void head_update(int16_t *wh, const uint8_t *a, uint16_t *rng, const int32_t *p) {
    ff_head_update(wh, a, p[FF_H_N_IN], p[FF_H_ROW], p[FF_H_COEF], p[FF_H_SHIFT], rng);
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
            int32_t v = ff_clip_u8(acc >> shift[0]);
            h[i] = (uint8_t)v;
            g += v * v;
        }
        if (goodness_from <= 0)
            total += g;
        b = base + n0;
        for (int l = 1; l < n_layers; l++) {
            int32_t norm = ff_isqrt(g);
            int32_t recip = norm ? (norm_target << 16) / norm : 0;
            uint8_t *inp = (l & 1) ? nv : nv2;
            int nb = n_out[l - 1];
            ff_normalize(h, inp, nb, recip);
            const uint8_t *w = weights[l];
            g = 0;
            for (int i = 0; i < n_out[l]; i++) {
                const uint8_t *row = w + (long)i * n_in[l];
                int32_t acc = b[i];
                for (int j = 0; j < nb; j++)
                    acc += ((int32_t)row[j] - 128) * (int32_t)inp[j];
                int32_t v = ff_clip_u8(acc >> shift[l]);
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
