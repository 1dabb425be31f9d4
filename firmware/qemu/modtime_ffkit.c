/*
 * time.time() for ffkit's emulated boards (MICROPY_PY_TIME_INCLUDEFILE; the qemu port has
 * no time.time): seconds since boot, the board having no calendar clock. ffrt uses it for
 * intervals only (an open export or import session's expiry, ffrt.server).
 */

#include "py/mphal.h"

static mp_obj_t mp_time_time_get(void) {
    return mp_obj_new_int_from_uint(mp_hal_ticks_ms() / 1000);
}
