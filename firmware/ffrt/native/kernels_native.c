/* ffrt.kernels_native: the kernels of ffrt.kernels_ref as a MicroPython native module.
 *
 * Same names, arguments and bits as ffrt.kernels_ref and ffrt.kernels_viper; the loops
 * are kernels.h. Built per board arch into ffrt/kernels_native.mpy by
 * `ffkit build-native` (py/dynruntime.mk and tools/mpy_ld.py from a MicroPython tree);
 * ffrt.net.default_kernels picks it where it loads. Unlike the viper twin, each call
 * checks that the buffers hold what the sizes say (ValueError, before anything is
 * written), since C would otherwise write past them. Nothing allocates: the arguments
 * arrive in the caller's frame and the buffers are used in place.
 */
#include "py/dynruntime.h"
#include "kernels.h"
#include "ff_features.h"  /* not features.h: the C library has one */

static void *buf(mp_obj_t o, mp_int_t need, int flags) {
    mp_buffer_info_t b;
    mp_get_buffer_raise(o, &b, flags);
    if (need < 0 || (size_t)need > b.len)
        mp_raise_ValueError(MP_ERROR_TEXT("kernel buffer shorter than its sizes"));
    return b.buf;
}

static mp_int_t in(mp_int_t v, mp_int_t lo, mp_int_t hi) {
    if (v < lo || v > hi)
        mp_raise_ValueError(MP_ERROR_TEXT("kernel size or shift out of range"));
    return v;
}

static mp_int_t num(mp_obj_t o, mp_int_t lo, mp_int_t hi) {
    return in(mp_obj_get_int(o), lo, hi);
}

#define N_MAX 0x3FFF   /* n_in, n_out < 16,500: kernels_ref's bound for the offset sum */
#define SHIFT_MAX 28   /* lr_shift, head_shift <= 28 (ffrt.fixedpoint.top_bits) */

/* fc_relu(w, x, h, n_in, n_out, shift) -> goodness */
static mp_obj_t fc_relu(size_t n_args, const mp_obj_t *args) {
    mp_int_t n_in = num(args[3], 0, N_MAX), n_out = num(args[4], 0, N_MAX);
    int shift = num(args[5], 0, 31);
    const uint8_t *w = buf(args[0], n_in * n_out, MP_BUFFER_READ);
    const uint8_t *x = buf(args[1], n_in, MP_BUFFER_READ);
    uint8_t *h = buf(args[2], n_out, MP_BUFFER_WRITE);
    return mp_obj_new_int(ff_fc_relu(w, x, h, n_in, n_out, shift));
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(fc_relu_obj, 6, 6, fc_relu);

/* fc_acc(w, x, acc, n_in, n_out) */
static mp_obj_t fc_acc(size_t n_args, const mp_obj_t *args) {
    mp_int_t n_in = num(args[3], 0, N_MAX), n_out = num(args[4], 0, N_MAX);
    const uint8_t *w = buf(args[0], n_in * n_out, MP_BUFFER_READ);
    const uint8_t *x = buf(args[1], n_in, MP_BUFFER_READ);
    int32_t *acc = buf(args[2], 4 * n_out, MP_BUFFER_WRITE);
    ff_fc_acc(w, x, acc, n_in, n_out);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(fc_acc_obj, 5, 5, fc_acc);

/* label_relu(w, acc, h, p) -> goodness; p: the int32 parameters (FF_P_*) */
static mp_obj_t label_relu(size_t n_args, const mp_obj_t *args) {
    const int32_t *p = buf(args[3], 4 * FF_P_LEN, MP_BUFFER_READ);
    int32_t n_in = p[FF_P_N_IN], n_out = p[FF_P_N_OUT], col = p[FF_P_COL];
    int32_t step = p[FF_P_STEP], count = p[FF_P_COUNT];
    if (n_in < 0 || n_in > N_MAX || n_out < 0 || n_out > N_MAX || p[FF_P_SHIFT] < 0
        || p[FF_P_SHIFT] > 31 || count < 0 || step < 0 || col < 0
        || (count > 0 && col + (count - 1) * step >= n_in)
        || p[FF_P_VALUE] < 0 || p[FF_P_VALUE] > 255)
        mp_raise_ValueError(MP_ERROR_TEXT("kernel size or shift out of range"));
    const uint8_t *w = buf(args[0], n_in * n_out, MP_BUFFER_READ);
    const int32_t *acc = buf(args[1], 4 * n_out, MP_BUFFER_READ);
    uint8_t *h = buf(args[2], n_out, MP_BUFFER_WRITE);
    return mp_obj_new_int(ff_label_relu(w, acc, h, p));
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(label_relu_obj, 4, 4, label_relu);

/* normalize(h, out, n, recip) */
static mp_obj_t normalize(size_t n_args, const mp_obj_t *args) {
    mp_int_t n = num(args[2], 0, N_MAX);
    int32_t recip = num(args[3], 0, 0x3FFFFFFF);
    const uint8_t *h = buf(args[0], n, MP_BUFFER_READ);
    uint8_t *out = buf(args[1], n, MP_BUFFER_WRITE);
    ff_normalize(h, out, n, recip);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(normalize_obj, 4, 4, normalize);

/* update(w, x, h, rng, p); p: n_in, n_out, coef, shift, floor (int32, FF_U_*) */
static mp_obj_t update(size_t n_args, const mp_obj_t *args) {
    const int32_t *p = buf(args[4], 4 * FF_U_LEN, MP_BUFFER_READ);
    int32_t n_in = in(p[FF_U_N_IN], 0, N_MAX), n_out = in(p[FF_U_N_OUT], 0, N_MAX);
    int32_t coef = in(p[FF_U_COEF], -0xFFF, 0xFFF);
    int shift = in(p[FF_U_SHIFT], 1, SHIFT_MAX);
    int floor = in(p[FF_U_FLOOR], 0, 255);
    uint8_t *w = buf(args[0], n_in * n_out, MP_BUFFER_WRITE);
    const uint8_t *x = buf(args[1], n_in, MP_BUFFER_READ);
    const uint8_t *h = buf(args[2], n_out, MP_BUFFER_READ);
    uint16_t *rng = buf(args[3], 4 * n_out, MP_BUFFER_WRITE);
    ff_update(w, x, h, n_in, n_out, coef, shift, rng, floor);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(update_obj, 5, 5, update);

/* head_scores(wh, a, n_in, n_out, scores) */
static mp_obj_t head_scores(size_t n_args, const mp_obj_t *args) {
    mp_int_t n_in = num(args[2], 0, N_MAX), n_out = num(args[3], 0, N_MAX);
    const int16_t *wh = buf(args[0], 2 * n_in * n_out, MP_BUFFER_READ);
    const uint8_t *a = buf(args[1], n_in, MP_BUFFER_READ);
    int32_t *scores = buf(args[4], 4 * n_out, MP_BUFFER_WRITE);
    ff_head_scores(wh, a, n_in, n_out, scores);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(head_scores_obj, 5, 5, head_scores);

/* head_update(wh, a, rng, p); p: n_in, row, coef, shift (int32, FF_H_*) */
static mp_obj_t head_update(size_t n_args, const mp_obj_t *args) {
    const int32_t *p = buf(args[3], 4 * FF_H_LEN, MP_BUFFER_READ);
    int32_t n_in = in(p[FF_H_N_IN], 0, N_MAX), row = in(p[FF_H_ROW], 0, N_MAX);
    int32_t coef = in(p[FF_H_COEF], -0xFFF, 0xFFF);
    int shift = in(p[FF_H_SHIFT], 1, SHIFT_MAX);
    int16_t *wh = buf(args[0], 2 * n_in * (row + 1), MP_BUFFER_WRITE);
    const uint8_t *a = buf(args[1], n_in, MP_BUFFER_READ);
    uint16_t *rng = buf(args[2], 4, MP_BUFFER_WRITE);
    ff_head_update(wh, a, n_in, row, coef, shift, rng);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(head_update_obj, 4, 4, head_update);

/* copy(dst, src, off, n): kernels_ref.copy */
static mp_obj_t copy(size_t n_args, const mp_obj_t *args) {
    mp_int_t off = num(args[2], 0, 0x3FFFFFFF), n = num(args[3], 0, 0x3FFFFFFF);
    uint8_t *dst = buf(args[0], n, MP_BUFFER_WRITE);
    const uint8_t *src = buf(args[1], off + n, MP_BUFFER_READ);
    ff_copy(dst, src + off, n);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(copy_obj, 4, 4, copy);

/* isqrt(n) for 0 <= n < 2**30: kernels_ref.isqrt */
static mp_obj_t isqrt(mp_obj_t n) {
    return MP_OBJ_NEW_SMALL_INT(ff_isqrt(num(n, 0, 0x3FFFFFFF)));
}
static MP_DEFINE_CONST_FUN_OBJ_1(isqrt_obj, isqrt);

/* window(ring, win, head, out, tab): ffrt.features_viper.window */
static mp_obj_t window(size_t n_args, const mp_obj_t *args) {
    int head = num(args[2], 0, FF_WINDOW - 1);
    const int16_t *ring = buf(args[0], 2 * FF_CHANNELS * FF_WINDOW, MP_BUFFER_READ);
    int16_t *w = buf(args[1], 2 * FF_WINDOW, MP_BUFFER_WRITE);
    uint8_t *out = buf(args[3], 9 * FF_CHANNELS, MP_BUFFER_WRITE);
    const uint8_t *tab = buf(args[4], 5 * FF_CHANNELS, MP_BUFFER_READ);
    ff_window(ring, w, head, out, tab);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(window_obj, 5, 5, window);

/* sample(ring, p, ax, ay, az, gx, gy, gz): ffrt.features_viper.sample; any int saturates */
static mp_obj_t sample(size_t n_args, const mp_obj_t *args) {
    int p = num(args[1], 0, FF_WINDOW - 1);
    int16_t *r = buf(args[0], 2 * FF_CHANNELS * FF_WINDOW, MP_BUFFER_WRITE);
    int32_t v[6];
    for (int k = 0; k < 6; k++) {
        mp_obj_t o = args[2 + k];
        mp_int_t x = mp_obj_get_int(o);  /* TypeError for what is not an int */
        if (!mp_obj_is_small_int(o))     /* a long int: far outside int16, by its sign */
            x = mp_binary_op(MP_BINARY_OP_LESS, o, MP_OBJ_NEW_SMALL_INT(0)) == mp_const_true
                ? -32768 : 32767;
        v[k] = x < -32768 ? -32768 : (x > 32767 ? 32767 : (int32_t)x);  /* before narrowing */
    }
    ff_sample(r, p, v);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(sample_obj, 8, 8, sample);

/* samples(ring, p, src, off, k): ffrt.features_viper.samples */
static mp_obj_t samples(size_t n_args, const mp_obj_t *args) {
    int p = num(args[1], 0, FF_WINDOW - 1);
    mp_int_t off = num(args[3], 0, 0x3FFFFFFF), k = num(args[4], 0, 0x3FFFFFFF / 12);
    int16_t *r = buf(args[0], 2 * FF_CHANNELS * FF_WINDOW, MP_BUFFER_WRITE);
    const uint8_t *src = buf(args[2], off + 12 * k, MP_BUFFER_READ);
    ff_samples(r, p, src + off, k);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(samples_obj, 5, 5, samples);

mp_obj_t mpy_init(mp_obj_fun_bc_t *self, size_t n_args, size_t n_kw, mp_obj_t *args) {
    MP_DYNRUNTIME_INIT_ENTRY
    mp_store_global(MP_QSTR_fc_relu, MP_OBJ_FROM_PTR(&fc_relu_obj));
    mp_store_global(MP_QSTR_normalize, MP_OBJ_FROM_PTR(&normalize_obj));
    mp_store_global(MP_QSTR_fc_acc, MP_OBJ_FROM_PTR(&fc_acc_obj));
    mp_store_global(MP_QSTR_label_relu, MP_OBJ_FROM_PTR(&label_relu_obj));
    mp_store_global(MP_QSTR_update, MP_OBJ_FROM_PTR(&update_obj));
    mp_store_global(MP_QSTR_head_scores, MP_OBJ_FROM_PTR(&head_scores_obj));
    mp_store_global(MP_QSTR_head_update, MP_OBJ_FROM_PTR(&head_update_obj));
    mp_store_global(MP_QSTR_copy, MP_OBJ_FROM_PTR(&copy_obj));
    mp_store_global(MP_QSTR_isqrt, MP_OBJ_FROM_PTR(&isqrt_obj));
    mp_store_global(MP_QSTR_window, MP_OBJ_FROM_PTR(&window_obj));
    mp_store_global(MP_QSTR_sample, MP_OBJ_FROM_PTR(&sample_obj));
    mp_store_global(MP_QSTR_samples, MP_OBJ_FROM_PTR(&samples_obj));
    mp_store_global(MP_QSTR_HEAD_W_MAX, MP_OBJ_NEW_SMALL_INT(FF_HEAD_W_MAX));
    MP_DYNRUNTIME_INIT_EXIT
}
