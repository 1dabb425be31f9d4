/*
 * ffkit's emulated boards: MicroPython's qemu port (ports/qemu/main.c, MIT licence,
 * Copyright (c) Damien P. George and contributors) with what a board running ffrt needs:
 *
 * - the heap size given at boot (QEMU's -append "heap=N", read through semihosting's
 *   SYS_GET_CMDLINE), at most MICROPY_HEAP_SIZE, so that one image measures any heap;
 * - the frozen _boot.py (mounts littlefs v2 on the flash image, ffkit_board), then
 *   main.py: the filesystem's, else the frozen one (ffrt.app);
 * - mp_hal_time_ns, which littlefs needs for its timestamps (the port has none).
 */

#include <stdlib.h>
#include <string.h>

#include "py/builtin.h"
#include "py/compile.h"
#include "py/runtime.h"
#include "py/gc.h"
#include "py/mperrno.h"
#include "py/mphal.h"
#include "shared/runtime/gchelper.h"
#include "shared/runtime/pyexec.h"

#if MICROPY_HEAP_SIZE <= 0
#error MICROPY_HEAP_SIZE must be a positive integer.
#endif

static uint32_t gc_heap[MICROPY_HEAP_SIZE / sizeof(uint32_t)];

size_t ffkit_cmdline(char *buf, size_t len);  // ffkit_board.c

// "heap=N" (bytes, or N with a K suffix) in QEMU's -append string, else the whole heap.
static size_t boot_heap_size(void) {
    static char cmd[4096];  // as ffkit_board.c's cmdline: the copy list can be long
    size_t heap = MICROPY_HEAP_SIZE;
    if (ffkit_cmdline(cmd, sizeof(cmd)) == 0) {
        const char *p = strstr(cmd, "heap=");
        if (p != NULL) {
            size_t v = 0;
            for (p += 5; *p >= '0' && *p <= '9' && v < MICROPY_HEAP_SIZE; ++p) {
                v = v * 10 + (size_t)(*p - '0');
            }
            if (*p == 'K' || *p == 'k') {
                v *= 1024;
            }
            if (v >= 1024 && v <= MICROPY_HEAP_SIZE) {
                heap = v & ~(size_t)3;
            }
        }
    }
    return heap;
}

int main(int argc, char **argv) {
    mp_cstack_init_with_sp_here(MICROPY_STACK_SIZE);
    size_t heap = boot_heap_size();
    gc_init(gc_heap, (char *)gc_heap + heap);

    for (;;) {
        mp_init();
        pyexec_frozen_module("_boot.py", false);
        if (pyexec_mode_kind == PYEXEC_MODE_FRIENDLY_REPL) {
            mp_import_stat_t st = mp_import_stat("main.py");
            // pyexec_file_if_exists would prefer the frozen main.py
            int ret = st == MP_IMPORT_STAT_FILE ? pyexec_file("main.py")
                : pyexec_frozen_module("main.py", true);
            if (ret & PYEXEC_FORCED_EXIT) {
                goto soft_reset;
            }
        }
        for (;;) {
            if (pyexec_mode_kind == PYEXEC_MODE_RAW_REPL) {
                if (pyexec_raw_repl() != 0) {
                    break;
                }
            } else {
                if (pyexec_friendly_repl() != 0) {
                    break;
                }
            }
        }
    soft_reset:
        mp_printf(&mp_plat_print, "MPY: soft reboot\n");
        gc_sweep_all();
        mp_deinit();
    }
}

void gc_collect(void) {
    gc_collect_start();
    gc_helper_collect_regs_and_stack();
    gc_collect_end();
}

void nlr_jump_fail(void *val) {
    mp_printf(&mp_plat_print, "uncaught NLR\n");
    exit(1);
}

// littlefs stamps files with the time: the board's clock since boot, as ns.
uint64_t mp_hal_time_ns(void) {
    return (uint64_t)mp_hal_ticks_us() * 1000ULL;
}
