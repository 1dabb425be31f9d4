"""Docs are tests (River's habit): docstring examples and the docs' code run as written,
every relative link in README.md and docs/ resolves to a file and a heading, and the quick
documented commands print the figures written beside them."""

import doctest
import importlib
import json
import os
import pkgutil
import re
import shlex
import subprocess
import sys

import pytest

import ffkit
import ffrt
from conftest import REPO_ROOT

# The viper twins need MicroPython's viper emitter; tests/test_kernels.py and
# tests/test_frontend.py run them there.
SKIP = {"ffrt.kernels_viper", "ffrt.frontend_viper", "ffrt.features_viper"}

DOCS = REPO_ROOT / "docs"
PAGES = [REPO_ROOT / "README.md"] + sorted(DOCS.glob("*.md"))


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


def test_docs_river_example_runs():
    text = (DOCS / "cli.md").read_text()
    blocks = [b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "FFClassifier" in b]
    assert blocks, "docs/cli.md lost its River example"
    ns = {}
    exec(compile(blocks[0], "docs/cli.md", "exec"), ns)
    assert ns["model"].predict_one(dict(enumerate(ns["X"][0].astype(int)))) in range(10)


# --- the README is a front page, and every link in it and in docs/ leads somewhere


def _without_code_blocks(text):
    # headings and links inside fenced code (shell comments, Python indexing) are not
    # markdown
    return re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)


def github_anchors(text):
    """The anchors GitHub gives a page's headings: lower case, punctuation dropped, spaces
    to hyphens, a repeated one suffixed -1, -2 ..."""
    seen = {}
    anchors = set()
    for m in re.finditer(r"^#{1,6} +(.+?) *#*$", _without_code_blocks(text), re.M):
        slug = re.sub(r"[^\w\- ]", "", m.group(1).lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        anchors.add(slug if n == 0 else "%s-%d" % (slug, n))
    return anchors


def test_github_anchors_as_github_makes_them():
    text = "# A `.ffw` file: (x)\n## Same\n## Same\n```\n# not a heading\n```\n"
    assert github_anchors(text) == {"a-ffw-file-x", "same", "same-1"}


def test_readme_is_a_front_page():
    n = (REPO_ROOT / "README.md").read_text().count("\n")
    assert 100 <= n <= 200, "README.md has %d lines: the details belong in docs/" % n


def test_readme_links_every_docs_page():
    text = (REPO_ROOT / "README.md").read_text()
    for page in PAGES[1:]:
        assert "](docs/%s" % page.name in text, "README does not link docs/%s" % page.name


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_relative_links_resolve(page):
    text = _without_code_blocks(page.read_text())
    links = re.findall(r"\[[^\]]*\]\(([^)\s]+)\)", text)
    for link in links:
        if re.match(r"[a-z]+:", link):  # http(s), mailto: not this test's business
            continue
        path, _, anchor = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        assert target.exists(), "%s: %s: no such file" % (page.name, link)
        if anchor:
            assert target.suffix == ".md", "%s: %s: anchor into a non-page" % (page.name, link)
            assert anchor in github_anchors(target.read_text()), (
                "%s: %s: no such heading" % (page.name, link))


# --- the quick documented commands, run as written, print the figures written beside them

FLOAT = r"\d+\.\d+"


def _rows(text):
    """Every markdown table row as its list of cells (a cell may hold an escaped |)."""
    for line in text.splitlines():
        if line.startswith("|") and not line.startswith("|---"):
            yield [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]


def _row(text, first_cell):
    rows = [r for r in _rows(text) if r[0].startswith(first_cell)]
    assert len(rows) == 1, "no single table row starting %r" % first_cell
    return rows[0]


def _floats(cell):
    return re.findall(FLOAT, cell.replace("*", ""))


def _agrees(written, measured):
    """A figure as written (0.976) is the measured one rounded to its decimals."""
    decimals = len(written.split(".")[1])
    assert abs(float(written) - measured) <= 0.5 * 10 ** -decimals + 1e-9, (written, measured)


def _run_documented(command):
    """Run `ffkit ...` as the docs write it (from the repo's root); its JSON output."""
    argv = shlex.split(command)
    assert argv[0] == "ffkit" and "--json" in argv, command
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO_ROOT / "host"), str(REPO_ROOT / "firmware"), env.get("PYTHONPATH", "")])
    p = subprocess.run([sys.executable, "-m", "ffkit.cli", *argv[1:]], cwd=REPO_ROOT,
                       capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_digits_accuracy_figures_are_what_the_command_prints():
    readme = (REPO_ROOT / "README.md").read_text()
    results = (DOCS / "results.md").read_text()
    goodness = _row(readme, "digits held-out accuracy, predicting by goodness")
    base = re.fullmatch(r"`(ffkit eval [^`]*)` \(`accuracy`\)", goodness[2]).group(1)
    assert _row(readme, "float MLP (one hidden layer of 128)")[2].startswith(
        "same command with `--baselines`")
    # results.md names the same command with --baselines; that one run backs both pages
    command = re.search(r"Commands: `(ffkit eval --dataset digits [^`]*)`", results).group(1)
    assert sorted(shlex.split(command)) == sorted(shlex.split(base) + ["--baselines"])
    out = _run_documented(command)

    _agrees(goodness[1], out["accuracy"])
    _agrees(_row(readme, "same model, one-pass linear head")[1], out["accuracy_head"])
    control = _row(readme, "control: the same head on a net whose FF layers never learn")[1]
    m = re.fullmatch(r"(%s) \(FF adds (%s) points by goodness, `margin`; (%s) by the head\)"
                     % (FLOAT, FLOAT, FLOAT), control)
    assert m, control
    _agrees(m.group(1), out["accuracy_head_untrained_control"])
    _agrees(m.group(2), 100 * out["margin"])
    _agrees(m.group(3), 100 * out["margin_head"])
    _agrees(_row(readme, "float MLP (one hidden layer of 128)")[1],
            out["baselines"]["mlp_128"])

    row = _row(results, "digits (450)")
    _agrees(row[1], out["accuracy"])
    _agrees(row[2], out["accuracy_head"])
    _agrees(row[3], out["accuracy_head_untrained_control"])
    adds = re.fullmatch(r"\+(%s) / \+(%s) points" % (FLOAT, FLOAT), row[4])
    _agrees(adds.group(1), 100 * out["margin"])
    _agrees(adds.group(2), 100 * out["margin_head"])
    _agrees(row[5], out["baselines"]["logistic_regression"])
    _agrees(row[6], out["baselines"]["mlp_128"])
    assert out["n_test"] == int(re.search(r"\((\d+)\)", row[0]).group(1))


@pytest.mark.parametrize("first_cell", ["breast cancer", "wine"])
def test_one_class_figures_are_what_the_command_prints(first_cell):
    row = _row((DOCS / "results.md").read_text(), first_cell)
    _, ff, forest, svm, energy, untrained, command = row
    out = _run_documented(re.fullmatch(r"`([^`]*)`", command).group(1))
    controls = out["controls"]

    mean, worst = _floats(ff)[:2]  # "0.957 (0.887: cultivar 0, seed 3)"
    _agrees(mean, out["roc_auc"])
    _agrees(worst, out["roc_auc_worst"])
    assert int(re.search(r"seed (\d+)\)", ff).group(1)) == out["worst_seed"]
    task = re.search(r"\(%s: ([^,]+), seed" % FLOAT, ff)
    if task:  # a single task's worst is that task; several name theirs
        assert task.group(1) == out["worst_task"]
    for cell, name in ((forest, "isolation_forest"), (svm, "one_class_svm")):
        figures = _floats(cell)  # "0.981 (0.959)": the mean, then the worst task
        _agrees(figures[0], controls[name]["roc_auc"])
        if len(figures) > 1:
            _agrees(figures[1], controls[name]["roc_auc_worst"])
    low, high = _floats(energy)  # "energy, low / high = normal"
    _agrees(low, controls["energy_low"]["roc_auc"])
    _agrees(high, controls["energy_high"]["roc_auc"])
    figures = _floats(untrained)  # "0.047 (0.953)": 1 - AUC in parentheses
    _agrees(figures[0], out["untrained_roc_auc"])
    if len(figures) > 1:
        _agrees(figures[1], out["untrained_inverted_roc_auc"])
