# ffkit developer entry points. Every target sets up what it needs: the first run creates
# $(VENV) from requirements.txt (exact pins) and installs ffkit + ffrt editable into it.
# Needs nothing but python3 on PATH.
#
#   make test                                   all tests
#   make test PYTEST_ARGS="tests/test_mpy_runner.py -x"
#   make test PYTEST_ARGS=--runslow             include tests marked slow
#   make test MICROPYTHON=/path/to/micropython  device tests on another unix-port binary

PYTHON ?= python3
VENV ?= .venv
MICROPYTHON ?= $(VENV)/bin/micropython
PYTEST_ARGS ?=

STAMP := $(VENV)/.installed
VPY := $(VENV)/bin/python

.PHONY: all test demo bench lint golden clean

all: test

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -r requirements.txt
	$(VPY) -m pip install -e . --no-deps
	touch $@

# MICROPYTHON is passed on so that tests and `ffkit.mpy` run the binary chosen here.
test: $(STAMP)
	MICROPYTHON="$(MICROPYTHON)" $(VPY) -m pytest -q $(PYTEST_ARGS)

demo: $(STAMP)
	MICROPYTHON="$(MICROPYTHON)" $(VENV)/bin/ffkit demo

bench: $(STAMP)
	MICROPYTHON="$(MICROPYTHON)" $(VENV)/bin/ffkit bench

lint: $(STAMP)
	$(VPY) -m compileall -q firmware host

golden: $(STAMP)
	@echo "no golden logs yet"

clean:
	rm -rf $(VENV) build dist *.egg-info host/*.egg-info firmware/*.egg-info .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
