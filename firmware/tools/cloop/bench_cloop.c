/* Plain C loops for `ffkit bench`: the yardstick beside ffrt's native kernels.
 *
 * fc_plain and update_plain have the arguments and the bits of ffrt.kernels_ref's fc_relu
 * and update (its parameters in an int32 array, as there), written the obvious way (a signed multiply-accumulate per weight, no
 * offset-binary trick, no unrolling) and built as a native module with the same flags as
 * ffrt/kernels_native.mpy (-O2, the arch's dynruntime.mk). The bench counts instructions
 * per MAC and per weight of both on the same arch: how far the kernels are from what a
 * compiler makes of the textbook loop. Not part of ffrt; no bounds checks.
 */
#include "py/dynruntime.h"

static void *ptr(mp_obj_t o) {
    mp_buffer_info_t b;
    mp_get_buffer_raise(o, &b, MP_BUFFER_RW);
    return b.buf;
}

static mp_obj_t fc_plain(size_t n_args, const mp_obj_t *args) {
    const uint8_t *w = ptr(args[0]), *x = ptr(args[1]);
    uint8_t *h = ptr(args[2]);
    int n_in = mp_obj_get_int(args[3]), n_out = mp_obj_get_int(args[4]);
    int shift = mp_obj_get_int(args[5]);
    int32_t g = 0;
    for (int i = 0; i < n_out; i++) {
        int32_t acc = 0;
        for (int j = 0; j < n_in; j++)
            acc += ((int32_t)w[i * n_in + j] - 128) * x[j];
        int32_t v = acc >> shift;
        v = v < 0 ? 0 : (v > 255 ? 255 : v);
        h[i] = v;
        g += v * v;
    }
    return mp_obj_new_int(g);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(fc_plain_obj, 6, 6, fc_plain);

static mp_obj_t update_plain(size_t n_args, const mp_obj_t *args) {
    uint8_t *w = ptr(args[0]);
    const uint8_t *x = ptr(args[1]), *h = ptr(args[2]);
    uint16_t *rng = ptr(args[3]);
    const int32_t *p = ptr(args[4]);  /* n_in, n_out, coef, shift, floor */
    int n_in = p[0], n_out = p[1], shift = p[3], floor = p[4];
    int32_t coef = p[2];
    for (int i = 0; i < n_out; i++) {
        int32_t hi = h[i] < floor ? floor : h[i];
        uint32_t s = ((uint32_t)rng[2 * i] << 16) | rng[2 * i + 1];
        for (int j = 0; j < n_in; j++) {
            if (hi == 0 || x[j] == 0 || coef == 0)
                continue;
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            int32_t v = w[i * n_in + j] + ((coef * hi * x[j] + (int32_t)(s >> (32 - shift)))
                                           >> shift);
            w[i * n_in + j] = v < 1 ? 1 : (v > 255 ? 255 : v);
        }
        rng[2 * i] = s >> 16;
        rng[2 * i + 1] = s & 0xFFFF;
    }
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(update_plain_obj, 5, 5, update_plain);

mp_obj_t mpy_init(mp_obj_fun_bc_t *self, size_t n_args, size_t n_kw, mp_obj_t *args) {
    MP_DYNRUNTIME_INIT_ENTRY
    mp_store_global(MP_QSTR_fc_plain, MP_OBJ_FROM_PTR(&fc_plain_obj));
    mp_store_global(MP_QSTR_update_plain, MP_OBJ_FROM_PTR(&update_plain_obj));
    MP_DYNRUNTIME_INIT_EXIT
}
