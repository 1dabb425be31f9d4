# ffkit's emulated Cortex-M0 board: QEMU's microbit (nRF51822: Cortex-M0, armv6m; the
# SoC's RAM raised to 256 KB and its flash to 1 MB so that the same image can measure any
# heap up to 192 KB), as MicroPython's MICROBIT board: no native code emitter (the qemu
# port leaves viper out on the nRF51), so ffrt runs its pure-Python kernels; littlefs v2
# on a flash image (ffkit_board.c) and ffrt frozen.
QEMU_ARCH = arm
QEMU_MACHINE = microbit
QEMU_ARGS += -global nrf51-soc.flash-size=1048576 -global nrf51-soc.sram-size=262144

CFLAGS += -mthumb -mcpu=cortex-m0 -mfloat-abi=soft
CFLAGS += -DQEMU_SOC_NRF51
CFLAGS += -DMICROPY_HW_MCU_NAME='"nRF51"'
# QEMU clocks the nRF51's SysTick at 16 MHz; the port's ticks.c assumes 25 MHz unless told
CFLAGS += -DCPU_FREQ_HZ=16000000

LDSCRIPT = mcu/arm/nrf51.ld

SRC_BOARD_O = shared/runtime/gchelper_native.o shared/runtime/gchelper_thumb1.o

MPY_CROSS_FLAGS += -march=armv6m

MICROPY_HEAP_SIZE = 196608
MICROPY_VFS_LFS2 = 1
SRC_C += ffkit_board.c
CFLAGS += -DMICROPY_PY_TIME_TIME_TIME_NS=1
CFLAGS += -DMICROPY_PY_TIME_INCLUDEFILE='"ports/ffkit/modtime_ffkit.c"'
