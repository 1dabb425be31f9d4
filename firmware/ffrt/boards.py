"""Board profiles: what `ffkit flash` compiles for and what the firmware serves on.

One row per board (tuples: this module is loaded on the board too):

- arch: mpy-cross -march for the port's native code (viper); host/ffkit/board/builds.py takes
  its table from here.
- platform: sys.platform on that port; the ESP32 family is told apart by the chip that
  os.uname().machine names (`detect`).
- port: "stdio" (the REPL's USB/UART console, as the virtual board's pseudo-terminal) or
  a separate UART as (id, tx pin, rx pin, baud).
- i2c: the sensor bus as (id, scl pin, sda pin, Hz); placeholders until sensor drivers
  land (the usual pins of each family's reference board).
- heap: RAM at hand, a note; check gc.mem_free() on the board itself.

>>> profile("rp2")["arch"], detect("rp2"), detect("linux")
('armv6m', 'rp2', 'unix')
>>> detect("esp32", "Generic ESP32S3 module with ESP32S3")
'esp32s3'
>>> detect("qemu", "mps2-an385 with Cortex-M3"), detect("qemu", "microbit with nRF51")
('cortex-m3', 'cortex-m0')
>>> detect("qemu", "mps2-an386 with Cortex-M4")
'cortex-m4'
"""

FIELDS = ("arch", "platform", "port", "i2c", "heap")
PROFILES = {
    "rp2": ("armv6m", "rp2", "stdio", (0, 5, 4, 400000),
            "RP2040, 264 KB SRAM: about 190 KB of heap on a Pico"),
    "esp32": ("xtensawin", "esp32", "stdio", (0, 22, 21, 400000),
              "ESP32, 520 KB SRAM: about 100 KB of heap without PSRAM"),
    "esp32s3": ("xtensawin", "esp32", "stdio", (0, 9, 8, 400000),
                "ESP32-S3, 512 KB SRAM; megabytes with PSRAM"),
    "esp32c3": ("rv32imc", "esp32", "stdio", (0, 9, 8, 400000), "ESP32-C3, 400 KB SRAM"),
    "stm32": ("armv7emsp", "pyboard", "stdio", (1, "X9", "X10", 400000),
              "pyboard v1.1, STM32F405, 192 KB RAM: about 100 KB of heap"),
    "unix": ("x64", "linux", "stdio", None, "2 MB; `micropython -X heapsize=128K` mimics a board"),
    # emulated microcontrollers (ffkit sim --machine, firmware/qemu): the heap is set at
    # boot (ffkit sim --heap)
    "cortex-m3": ("armv7m", "qemu", "stdio", None, "QEMU mps2-an385, Cortex-M3: up to 1 MB"),
    "cortex-m4": ("armv7emsp", "qemu", "stdio", None,
                  "QEMU mps2-an386, Cortex-M4F (DSP instructions): up to 1 MB"),
    "cortex-m0": ("armv6m", "qemu", "stdio", None,
                  "QEMU microbit, nRF51 Cortex-M0 (no viper): up to 192 KB"),
}


def detect(platform=None, machine=None):
    """The profile name for sys.platform (and os.uname().machine on the ESP32 family)."""
    import sys
    platform = platform or sys.platform
    if platform in ("linux", "darwin"):
        return "unix"
    if platform == "qemu":  # the emulated boards: the CPU names the profile
        if machine is None:
            machine = getattr(sys.implementation, "_machine", "")  # the port has no uname
        if "Cortex-M0" in machine or "nRF51" in machine:
            return "cortex-m0"
        return "cortex-m4" if "Cortex-M4" in machine else "cortex-m3"
    if platform == "esp32":
        if machine is None:
            import os
            machine = os.uname().machine
        for chip in ("esp32s3", "esp32c3"):
            if chip in machine.lower():
                return chip
        return "esp32"
    for name, p in PROFILES.items():
        if p[1] == platform:
            return name
    raise ValueError("no board profile for platform %r" % platform)


def profile(name=None):
    """The profile of board name (default: this board) as a dict, with its "name"."""
    name = name or detect()
    if name not in PROFILES:
        raise ValueError("unknown board %r (profiles: %s)" % (name, ", ".join(PROFILES)))
    p = dict(zip(FIELDS, PROFILES[name]))
    p["name"] = name
    return p
