# ffkit's emulated Cortex-M3 board: QEMU's mps2-an385 (ARM's MPS2 with an AN385 Cortex-M3
# image: 4 MB of RAM holding code and data), as MicroPython's MPS2_AN385 board, with
# viper (armv7m), littlefs v2 on a flash image (ffkit_board.c) and ffrt frozen.
QEMU_ARCH = arm
QEMU_MACHINE = mps2-an385

CFLAGS += -mthumb -mcpu=cortex-m3 -mfloat-abi=soft
CFLAGS += -DQEMU_SOC_MPS2
CFLAGS += -DMICROPY_HW_MCU_NAME='"Cortex-M3"'

LDSCRIPT = mcu/arm/mps2.ld

SRC_BOARD_O = shared/runtime/gchelper_native.o shared/runtime/gchelper_thumb2.o

MPY_CROSS_FLAGS += -march=armv7m

# the largest heap a boot may ask for (main.c: -append "heap=N")
MICROPY_HEAP_SIZE = 1048576
MICROPY_VFS_LFS2 = 1
SRC_C += ffkit_board.c
CFLAGS += -DMICROPY_PY_TIME_TIME_TIME_NS=1
CFLAGS += -DMICROPY_PY_TIME_INCLUDEFILE='"ports/ffkit/modtime_ffkit.c"'
