# ffkit's emulated Cortex-M4 board: QEMU's mps2-an386 (ARM's MPS2 with an AN386 Cortex-M4
# image: the AN385's memory map and peripherals, a Cortex-M4 with its FPU), built as the
# CORTEX_M3 board is but for armv7emsp: viper, and native modules built for armv7emsp load
# (their dot product in the DSP extension's SMLAD), littlefs v2 on a flash image and ffrt
# frozen. The FPU is on (hard-float ABI) so that an armv7emsp .mpy is this port's own arch.
QEMU_ARCH = arm
QEMU_MACHINE = mps2-an386

CFLAGS += -mthumb -mcpu=cortex-m4 -mfloat-abi=hard -mfpu=fpv4-sp-d16
CFLAGS += -DQEMU_SOC_MPS2
CFLAGS += -DMICROPY_HW_MCU_NAME='"Cortex-M4"'
SUPPORTS_HARDWARE_FP_SINGLE = 1

LDSCRIPT = mcu/arm/mps2.ld

SRC_BOARD_O = shared/runtime/gchelper_native.o shared/runtime/gchelper_thumb2.o

MPY_CROSS_FLAGS += -march=armv7emsp

# the largest heap a boot may ask for (main.c: -append "heap=N")
MICROPY_HEAP_SIZE = 1048576
MICROPY_VFS_LFS2 = 1
SRC_C += ffkit_board.c
CFLAGS += -DMICROPY_PY_TIME_TIME_TIME_NS=1
CFLAGS += -DMICROPY_PY_TIME_INCLUDEFILE='"ports/ffkit/modtime_ffkit.c"'
