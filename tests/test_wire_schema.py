"""The wire schema is stated once, in ffrt, and the host imports it (issue 13, item 3).

The request modules of the firmware name the struct formats of their bodies and replies
(ffrt.transfer, ops, net_ops, live_ops, sleep_ops, log_ops), ffrt.rehearsal the buffer's
limits, ffrt.features the window count and ffrt.live the prediction modes. ffkit.board.client,
ffkit.config, the verbs and the fuzzer use those names; this test reads host/ffkit for a
restatement: a string equal to one of those formats (of two fields or more: "<I" alone
is too common to mean the wire), a comparison with the limits, the window formula, the
modes written out.
"""

import ast
import importlib
import re
import struct
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HOST = ROOT / "host" / "ffkit"
WIRE_MODULES = ("transfer", "ops", "net_ops", "live_ops", "sleep_ops", "log_ops")


def _formats():
    """{format string: "ffrt.module.NAME, ..."} of every struct format a request module
    names (two may share one: transfer.BEGIN and log_ops.READ_REPLY are both "<II")."""
    out = {}
    for name in WIRE_MODULES:
        mod = importlib.import_module("ffrt." + name)
        for k, v in vars(mod).items():
            if k.isupper() and isinstance(v, str) and v.startswith("<"):
                out[v] = (out[v] + ", " if v in out else "") + "ffrt.%s.%s" % (name, k)
    return out


def _fields(fmt):
    """The fields of a format (a template's %d counts as one count)."""
    return len(re.findall(r"\d*[a-zA-Z]|%d[a-zA-Z]", fmt[1:]))


def test_the_request_modules_name_their_formats():
    formats = _formats()
    want = {"ffrt.transfer.BEGIN", "ffrt.transfer.EXPORT_CHUNK_BODY", "ffrt.ops.CHECKPOINT_REPLY",
            "ffrt.net_ops.PREDICT_REPLY", "ffrt.net_ops.LEARN_REPLY",
            "ffrt.live_ops.ADAPT_REPLY", "ffrt.sleep_ops.SLEEP_REPLY",
            "ffrt.log_ops.START_BODY", "ffrt.log_ops.READ_REPLY", "ffrt.log_ops.STATUS_REPLY"}
    named = {n for names in formats.values() for n in names.split(", ")}
    assert want <= named, want - named
    for fmt in formats:   # each is a valid struct format (templates with a count filled in)
        struct.calcsize(fmt % 3 if "%" in fmt else fmt)


def _host_files():
    return sorted(p for p in HOST.rglob("*.py") if "__pycache__" not in p.parts)


def test_no_wire_format_is_restated_in_the_host():
    formats = {f: n for f, n in _formats().items() if _fields(f) >= 2}
    found = []
    for path in _host_files():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Constant) and node.value in formats:
                found.append("%s:%d: %r is %s" % (path.relative_to(ROOT), node.lineno,
                                                   node.value, formats[node.value]))
    assert not found, "\n".join(found)


# rules of ffrt as a host module might write them again
RESTATED = [
    (re.compile(r"per_class\s*<=\s*\d|replay\s*<=\s*\d|<=\s*255\s+or\s+not"),
     "the rehearsal limits: ffrt.rehearsal.check_sizes"),
    (re.compile(r"//\s*HOP\b|//\s*64\b|-\s*WINDOW\)\s*//"), "the window count: ffrt.features.windows_done"),
    (re.compile(r"""\(\s*["']goodness["']\s*,\s*["']head["']\s*\)"""),
     "the prediction modes: ffrt.live.PREDICT_MODES"),
    (re.compile(r"<=\s*1024\b"), "SLEEP's steps: ffrt.sleep_ops.MAX_STEPS"),
]


def test_no_rule_of_ffrt_is_restated_in_the_host():
    found = []
    for path in _host_files():
        for i, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            for pattern, what in RESTATED:
                if pattern.search(code):
                    found.append("%s:%d: %s (%s)" % (path.relative_to(ROOT), i, line.strip(),
                                                      what))
    assert not found, "\n".join(found)


@pytest.mark.parametrize("text, what", [
    ('    if not 0 <= per_class <= 255 or not 0 <= replay <= 16:', "rehearsal"),
    ('    nwin = 0 if n < WINDOW else 1 + (n - WINDOW) // HOP', "window"),
    ('PREDICT_CODES = ("goodness", "head")', "prediction"),
])
def test_the_patterns_see_the_restatements_this_replaced(text, what):
    assert any(p.search(text) and what in w for p, w in RESTATED)


def test_the_formats_seen_include_those_written_out_before():
    """ffkit.board.client wrote these out before it imported them."""
    formats = _formats()
    for old in ("<BBBIIBBHH", "<HIIHH", "<BIII", "<II", "<IH", "<BIH", "<IB"):
        assert old in formats and _fields(old) >= 2, old
