"""The import layers of firmware/ffrt and host/ffkit: no cycles, nothing imported upward.

Every import counts, the ones inside functions too (they hid cycles before), except
those under ``if TYPE_CHECKING:`` (never run) and ffkit's PEP 562 ``__getattr__``, which
imports River's estimator (ffkit.learning.river_model) only when ``ffkit.FFClassifier`` is asked
for. The floors, lowest first: ffrt (the engine, formats and board services: it imports
nothing of the host), the host library (ffkit's modules), the verbs (ffkit.commands),
the CLI that assembles them (ffkit.cli). A library module never imports a verb or the CLI.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = (("ffrt", ROOT / "firmware" / "ffrt"), ("ffkit", ROOT / "host" / "ffkit"))

# cycles still to be broken, each named (none now): a new cycle fails the test, and so
# does a listed one once it is gone
KNOWN_CYCLES: "set[frozenset]" = set()


def _modules():
    mods = {}
    for pkg, base in PACKAGES:
        for f in sorted(base.rglob("*.py")):
            parts = (pkg,) + f.relative_to(base).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            mods[".".join(parts)] = f
    return mods


def _is_type_checking(node):
    return isinstance(node, ast.If) and isinstance(node.test, ast.Name) \
        and node.test.id == "TYPE_CHECKING"


def _imports(name, path, mods):
    """The project modules `name` imports (any depth, outside TYPE_CHECKING blocks)."""
    tree = ast.parse(path.read_text(), str(path))
    out = set()

    def visit(node, lazy_attr=False):
        if _is_type_checking(node):
            return
        if isinstance(node, ast.FunctionDef) and node.name == "__getattr__" \
                and name == "ffkit":
            return   # PEP 562: FFClassifier on first use (module docstring)
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name in mods)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module in mods:
                out.add(node.module)
            out.update(node.module + "." + a.name for a in node.names
                       if node.module + "." + a.name in mods)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    out.discard(name)
    # a submodule import loads its package first: that edge is the language's, not ours
    return {m for m in out if not name.startswith(m + ".")}


@pytest.fixture(scope="module")
def graph():
    mods = _modules()
    return {m: _imports(m, f, mods) for m, f in mods.items()}


def _cycles(graph):
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(frozenset(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_walker_sees_imports_inside_functions_and_a_cycle(tmp_path):
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [frozenset("abc")]
    f = tmp_path / "m.py"
    f.write_text("TYPE_CHECKING = False\n"
                 "if TYPE_CHECKING:\n    from ffrt.live import LiveLearner\n"
                 "def g():\n    from ffrt import ffw, crc32\n    import ffkit.board.link\n")
    mods = {"ffrt.live": None, "ffrt.ffw": None, "ffrt.crc32": None, "ffrt": None,
            "ffkit.board.link": None}
    assert _imports("ffkit.x", f, mods) == {"ffrt", "ffrt.ffw", "ffrt.crc32", "ffkit.board.link"}


def test_no_import_cycles(graph):
    found = set(_cycles(graph))
    new = [sorted(c) for c in found - KNOWN_CYCLES]
    gone = [sorted(c) for c in KNOWN_CYCLES - found]
    assert not new, "import cycles: %s" % new
    assert not gone, "no longer cycles (take them off KNOWN_CYCLES): %s" % gone


def test_the_firmware_imports_nothing_of_the_host(graph):
    bad = {m: sorted(d for d in deps if d.split(".")[0] == "ffkit")
           for m, deps in graph.items() if m.split(".")[0] == "ffrt"}
    assert not {m: d for m, d in bad.items() if d}


def test_the_library_imports_no_verb_and_not_the_cli(graph):
    def floor(m):
        if m == "ffkit.cli":
            return 3
        if m == "ffkit.commands" or m.startswith("ffkit.commands."):
            return 2
        return 1 if m.startswith("ffkit") else 0

    upward = sorted("%s -> %s" % (m, d) for m, deps in graph.items() for d in deps
                    if floor(d) > floor(m))
    assert not upward, upward


def test_a_long_host_module_says_why_it_is_long():
    """Over 500 lines, a host module's docstring gives its reason ("Size (over 500
    lines): ..."), so size is a choice written down, not a drift."""
    import ast
    long = []
    for f in sorted((ROOT / "host" / "ffkit").rglob("*.py")):
        text = f.read_text()
        if text.count("\n") > 500:
            doc = ast.get_docstring(ast.parse(text)) or ""
            if "Size (over 500 lines):" not in doc:
                long.append(f.name)
    assert not long, "over 500 lines without a reason in the docstring: %s" % long
