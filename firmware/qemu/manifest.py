# What ffkit's emulated boards freeze (FROZEN_MANIFEST; ffkit.board.qemu builds with it and sets
# FFKIT_FIRMWARE to the project's firmware/ folder): the boot script, main.py and the ffrt
# package, so bytecode and viper code run from the image instead of the heap. With
# FFKIT_NATIVE=0 (the Cortex-M0, whose port has no native emitter) the viper modules stay
# out; ffrt then runs its pure-Python kernels (ffrt.net.default_kernels).
import os

fw = os.environ["FFKIT_FIRMWARE"]
native = os.environ.get("FFKIT_NATIVE", "1") == "1"
freeze(os.path.join(fw, "qemu"), "_boot.py")
freeze(fw, "main.py")
package("ffrt", files=sorted(f for f in os.listdir(os.path.join(fw, "ffrt"))
                             if f.endswith(".py") and (native or not f.endswith("_viper.py"))),
        base_path=fw)
