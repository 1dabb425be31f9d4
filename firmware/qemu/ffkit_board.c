/*
 * ffkit_board: what an emulated ffkit board has that MicroPython's qemu port lacks.
 *
 * A flash chip that is a file on the host. QEMU's ARM semihosting (-semihosting) lets the
 * firmware open, seek, read and write a host file (SYS_OPEN, SYS_SEEK, SYS_READ,
 * SYS_WRITE): every write reaches the host's file before the call returns, so killing
 * QEMU (a power cut) leaves the image exactly as littlefs had written it up to that
 * block, and the image survives restarts. _boot.py wraps it as a block device
 * (readblocks/writeblocks/ioctl) and mounts littlefs v2 on it, as rp2 and esp32 do on
 * their flash. Semihosting is slow per call (a trap to QEMU), so blocks go whole.
 *
 *   ffkit_board.flash_open(path, size) -> size   open (create, grow to size) the image
 *   ffkit_board.flash_read(offset, buf)           buf's length of bytes at offset
 *   ffkit_board.flash_write(offset, buf)
 *   ffkit_board.cmdline() -> str                  QEMU's -append string
 *   ffkit_board.host_size(path) -> int            a host file's size (-1: none)
 *   ffkit_board.host_read(path, offset, buf) -> n  bytes of a host file into buf
 *   ffkit_board.exit(code)                        power off: QEMU exits with code
 */

#include <string.h>

#include "py/runtime.h"
#include "py/mperrno.h"

#define SYS_OPEN (0x01)
#define SYS_CLOSE (0x02)
#define SYS_WRITE (0x05)
#define SYS_READ (0x06)
#define SYS_SEEK (0x0A)
#define SYS_FLEN (0x0C)
#define SYS_GET_CMDLINE (0x15)
#define SYS_EXIT (0x18)

#define MODE_RPLUS_B (3)   // "r+b"
#define FFKIT_CMDLINE_MAX (4096)  // QEMU's -append: the heap, the image, the files to copy
#define MODE_WPLUS_B (7)   // "w+b"

static uint32_t semihost(uint32_t num, const void *arg) {
    register uint32_t num_reg __asm__ ("r0") = num;
    register const void *args_reg __asm__ ("r1") = arg;
    __asm__ __volatile__ (
        "bkpt 0xAB\n"
        : "+r" (num_reg)
        : "r" (args_reg)
        : "memory");
    return num_reg;
}

// The -append string (the kernel's command line); 0 on success.
size_t ffkit_cmdline(char *buf, size_t len) {
    uint32_t args[2] = {(uint32_t)(uintptr_t)buf, len - 1};
    buf[0] = 0;
    if (semihost(SYS_GET_CMDLINE, args) != 0) {
        return 1;
    }
    buf[args[1] < len ? args[1] : len - 1] = 0;
    return 0;
}

static int32_t flash_fd = -1;
static uint32_t flash_size;

static void check(bool ok) {
    if (!ok) {
        mp_raise_OSError(MP_EIO);
    }
}

static void flash_seek(uint32_t off) {
    uint32_t args[2] = {(uint32_t)flash_fd, off};
    check(flash_fd >= 0 && semihost(SYS_SEEK, args) == 0);
}

static mp_obj_t flash_open(mp_obj_t path_in, mp_obj_t size_in) {
    size_t n;
    const char *path = mp_obj_str_get_data(path_in, &n);
    uint32_t size = mp_obj_get_int(size_in);
    if (flash_fd >= 0) {
        uint32_t fd = (uint32_t)flash_fd;
        semihost(SYS_CLOSE, &fd);
        flash_fd = -1;
    }
    uint32_t args[3] = {(uint32_t)(uintptr_t)path, MODE_RPLUS_B, n};
    int32_t fd = (int32_t)semihost(SYS_OPEN, args);
    if (fd < 0) {  // a new image
        args[1] = MODE_WPLUS_B;
        fd = (int32_t)semihost(SYS_OPEN, args);
    }
    check(fd >= 0);
    flash_fd = fd;
    uint32_t fdarg = (uint32_t)fd;
    uint32_t have = semihost(SYS_FLEN, &fdarg);
    if (have < size) {  // erased flash reads as 0xff: grow the file with it
        static const uint8_t ff[256] = {[0 ... 255] = 0xff};
        flash_seek(have);
        while (have < size) {
            uint32_t k = size - have < sizeof(ff) ? size - have : sizeof(ff);
            uint32_t w[3] = {(uint32_t)fd, (uint32_t)(uintptr_t)ff, k};
            check(semihost(SYS_WRITE, w) == 0);
            have += k;
        }
    }
    flash_size = size;
    return mp_obj_new_int_from_uint(size);
}
static MP_DEFINE_CONST_FUN_OBJ_2(flash_open_obj, flash_open);

static mp_obj_t flash_rw(mp_obj_t off_in, mp_obj_t buf_in, bool write) {
    mp_buffer_info_t b;
    mp_get_buffer_raise(buf_in, &b, write ? MP_BUFFER_READ : MP_BUFFER_WRITE);
    uint32_t off = mp_obj_get_int(off_in);
    check(off <= flash_size && b.len <= flash_size - off);
    flash_seek(off);
    uint32_t args[3] = {(uint32_t)flash_fd, (uint32_t)(uintptr_t)b.buf, b.len};
    // both calls return the bytes NOT transferred: 0 is success
    check(semihost(write ? SYS_WRITE : SYS_READ, args) == 0);
    return mp_const_none;
}

static mp_obj_t flash_read(mp_obj_t off_in, mp_obj_t buf_in) {
    return flash_rw(off_in, buf_in, false);
}
static MP_DEFINE_CONST_FUN_OBJ_2(flash_read_obj, flash_read);

static mp_obj_t flash_write(mp_obj_t off_in, mp_obj_t buf_in) {
    return flash_rw(off_in, buf_in, true);
}
static MP_DEFINE_CONST_FUN_OBJ_2(flash_write_obj, flash_write);

// Host files beside the image (the board's folder), read whole at boot by _boot.py.
static int32_t host_open(mp_obj_t path_in) {
    size_t n;
    const char *path = mp_obj_str_get_data(path_in, &n);
    uint32_t args[3] = {(uint32_t)(uintptr_t)path, 1 /* "rb" */, n};
    return (int32_t)semihost(SYS_OPEN, args);
}

static void host_close(int32_t fd) {
    uint32_t a = (uint32_t)fd;
    semihost(SYS_CLOSE, &a);
}

static mp_obj_t host_size(mp_obj_t path_in) {
    int32_t fd = host_open(path_in);
    if (fd < 0) {
        return MP_OBJ_NEW_SMALL_INT(-1);
    }
    uint32_t a = (uint32_t)fd;
    uint32_t len = semihost(SYS_FLEN, &a);
    host_close(fd);
    return mp_obj_new_int_from_uint(len);
}
static MP_DEFINE_CONST_FUN_OBJ_1(host_size_obj, host_size);

static mp_obj_t host_read(mp_obj_t path_in, mp_obj_t off_in, mp_obj_t buf_in) {
    mp_buffer_info_t b;
    mp_get_buffer_raise(buf_in, &b, MP_BUFFER_WRITE);
    int32_t fd = host_open(path_in);
    check(fd >= 0);
    uint32_t seek[2] = {(uint32_t)fd, (uint32_t)mp_obj_get_int(off_in)};
    uint32_t args[3] = {(uint32_t)fd, (uint32_t)(uintptr_t)b.buf, b.len};
    bool ok = semihost(SYS_SEEK, seek) == 0;
    uint32_t left = ok ? semihost(SYS_READ, args) : b.len;
    host_close(fd);
    check(ok && left <= b.len);
    return MP_OBJ_NEW_SMALL_INT(b.len - left);  // bytes read
}
static MP_DEFINE_CONST_FUN_OBJ_3(host_read_obj, host_read);

static mp_obj_t cmdline(void) {
    static char buf[FFKIT_CMDLINE_MAX];  // not on the stack: it can list many files
    if (ffkit_cmdline(buf, sizeof(buf)) != 0) {
        return mp_obj_new_str("", 0);
    }
    return mp_obj_new_str(buf, strlen(buf));
}
static MP_DEFINE_CONST_FUN_OBJ_0(cmdline_obj, cmdline);

// Power off: QEMU exits with this code (semihosting's SYS_EXIT, ADP_Stopped_ApplicationExit
// with a subcode), so a script run on the board can end its run (ffkit.qemu.run_script).
static mp_obj_t board_exit(mp_obj_t code_in) {
    uint32_t args[2] = {0x20026, (uint32_t)mp_obj_get_int(code_in)};
    semihost(SYS_EXIT, args);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_1(board_exit_obj, board_exit);

static const mp_rom_map_elem_t ffkit_board_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR_ffkit_board) },
    { MP_ROM_QSTR(MP_QSTR_flash_open), MP_ROM_PTR(&flash_open_obj) },
    { MP_ROM_QSTR(MP_QSTR_flash_read), MP_ROM_PTR(&flash_read_obj) },
    { MP_ROM_QSTR(MP_QSTR_flash_write), MP_ROM_PTR(&flash_write_obj) },
    { MP_ROM_QSTR(MP_QSTR_cmdline), MP_ROM_PTR(&cmdline_obj) },
    { MP_ROM_QSTR(MP_QSTR_host_size), MP_ROM_PTR(&host_size_obj) },
    { MP_ROM_QSTR(MP_QSTR_host_read), MP_ROM_PTR(&host_read_obj) },
    { MP_ROM_QSTR(MP_QSTR_exit), MP_ROM_PTR(&board_exit_obj) },
};
static MP_DEFINE_CONST_DICT(ffkit_board_globals, ffkit_board_globals_table);

const mp_obj_module_t ffkit_board_module = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&ffkit_board_globals,
};

MP_REGISTER_MODULE(MP_QSTR_ffkit_board, ffkit_board_module);
