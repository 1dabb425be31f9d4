"""Docstring examples and README code run as written (River's habit: docs are tests)."""

import doctest
import importlib
import pkgutil
import re

import pytest

import ffkit
import ffrt
from conftest import REPO_ROOT

# The viper twins need MicroPython's viper emitter; tests/test_kernels.py and
# tests/test_frontend.py run them there.
SKIP = {"ffrt.kernels_viper", "ffrt.frontend_viper"}


def _modules(pkg):
    for info in pkgutil.iter_modules(pkg.__path__):
        name = pkg.__name__ + "." + info.name
        if name not in SKIP:
            yield name


@pytest.mark.parametrize("name", sorted(list(_modules(ffrt)) + list(_modules(ffkit))))
def test_module_doctests(name):
    mod = importlib.import_module(name)
    failed, _ = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert failed == 0, name


def test_readme_river_example_runs():
    text = (REPO_ROOT / "README.md").read_text()
    blocks = [b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "FFClassifier" in b]
    assert blocks, "README lost its River example"
    ns = {}
    exec(compile(blocks[0], "README.md", "exec"), ns)
    assert ns["model"].predict_one(dict(enumerate(ns["X"][0].astype(int)))) in range(10)
