"""A strict JSON reader for the bodies of SET (ffrt.net_ops) and ADAPT (ffrt.schedule).

MicroPython's json.loads accepts malformed text (``{"lr_shift" 26}``, trailing bytes such as
``{"lr_shift": 26}\\x00``) and allocates a frame per level of nesting (590 ``[`` took 4-8 KB
on a board). `loads` first checks, in one pass over a copy of the bytes, that the body is
exactly one of the shapes these two bodies take:

    body    := ws object ws                      (nothing after it)
    object  := '{' ws [member (ws ',' ws member)*] ws '}'        (keys unique)
    member  := string ws ':' ws (scalar | string | array)
    array   := '[' ws [item (ws ',' ws item)*] ws ']'
    item    := scalar | array
    scalar  := int | 'true' | 'false' | 'null'
    int     := '-'? ('0' | [1-9][0-9]*)          (at most 9 digits: no float, no exponent)
    string  := '"' [0x20-0x7e except '"' and '\\\\']* '"'   (at most 32 bytes, no escapes)
    ws      := (' ' | '\\t' | '\\n' | '\\r')*

An object holds at most 16 members (SET has 13 names) and an array 16 items; the object
is depth 1 and nesting stops at depth 4 (ADAPT's ``theta_schedule``: object, list of
pairs, pair, theta per layer); a body holds at most 64 objects and arrays (ADAPT's
largest: 53) and 600 bytes (proto.MAX_BODY). Only then does json.loads (in ROM on a
board) build the dict, of str to int (below 10**9: a small int on every port), bool, None,
str or lists of those. A fault raises ValueError naming its byte. No re, no float: the
same module reads these bodies in CPython (the host) and MicroPython.

The board loads it for a SET or ADAPT body only and drops it again (ffrt.unload),
and it is small: a 104K heap has a few KB free, in pieces, while ffrt.net_ops is loaded
(tests/test_strictjson.py). So its globals are few (a module dict of more than about a
dozen names grows by a 368-byte block), its functions short (one function's bytecode is
one block) and its strings short.

>>> loads(b'{"lr_shift": 26, "theta": [3000, -1], "learning": true, "x": null}')
{'lr_shift': 26, 'theta': [3000, -1], 'learning': True, 'x': None}
>>> loads(b'{"lr_shift" 26}')
Traceback (most recent call last):
...
ValueError: byte 12: ':' expected
>>> loads(b'{"lr": 1.5}')
Traceback (most recent call last):
...
ValueError: byte 8: not an integer (no floats)
"""

import json


def _fail(i, k):
    """ValueError at byte i: k < 10, the tokens state k takes (_GO's row k); else a fault."""
    if k < 10:
        w = []
        for t in b"\x04\x05\x01\x03\x00\x02\x06\x07":  # , : } ] { [ string scalar
            if _GO[k * 8 + t] != 0x78:
                w.append("a value" if t == 7 else "a string" if t == 6 else
                         "'%s'" % "{}[],:"[t])
        what = (", ".join(w[:-1]) + " or " + w[-1] if len(w) > 1 else
                w[0] if w else "the end") + " expected"
    else:
        what = ("the body ends early|nested deeper than 4|more than 64 objects and arrays|"
                "more than 16 items|a string is printable ASCII, no escapes, at most 32 "
                "bytes|an integer is 1 to 9 digits, no leading zero|not an integer (no "
                "floats)|a key is repeated").split("|")[k - 10]
    raise ValueError("byte %d: %s" % (i, what))


# The grammar as a table: the state after each token, by state (rows: 0 before the object,
# 1 after '{', 2 after the object's ',', 3 after a key, 4 after ':', 5 after '[', 6 after an
# array's ',', 7 after a member, 8 after an item, 9 after the object) and token (columns:
# { } [ ] , : string scalar); x: a fault, n: after a value (state 7, 8 or 9 by depth).
_GO = (b"1xxxxxxx" b"xnxxxx3x" b"xxxxxx3x" b"xxxxx4xx" b"xx5xxxnn"
       b"xx5nxxxn" b"xx5xxxxn" b"xnxx2xxx" b"xxxn6xxx" b"xxxxxxxx")


def _string(d, a, n):
    """The end of the string at d[a] ('"'): printable ASCII, no escapes, 32 bytes at most."""
    i = a + 1
    while i < n and d[i] != 0x22:
        if not 0x20 <= d[i] <= 0x7E or d[i] == 0x5C or i - a > 32:
            _fail(i, 14)
        i += 1
    if i == n:
        _fail(i, 10)
    return i + 1


def _int(d, a, n):
    """The end of the integer at d[a] ('-' or a digit): 1 to 9 digits, no float."""
    a += d[a] == 0x2D
    i = a
    while i < n and 0x30 <= d[i] <= 0x39:
        i += 1
    if i == a or i - a > 9 or (d[a] == 0x30 and i - a > 1):
        _fail(a, 15)
    if i < n and d[i] in b".eE":
        _fail(i, 16)
    return i


def _token(d, a, n):
    """The token at d[a] (not a space): its end << 3 | its kind (0-5: { } [ ] , : 6: a
    string, 7: a scalar), or -1 when none starts there."""
    c = d[a]
    if c == 0x22:
        return _string(d, a, n) << 3 | 6
    if c == 0x2D or 0x30 <= c <= 0x39:
        return _int(d, a, n) << 3 | 7
    t = b"{}[],:".find(c)
    if t >= 0:
        return (a + 1) << 3 | t
    for w in (b"true", b"false", b"null"):
        if d.startswith(w, a):
            return (a + len(w)) << 3 | 7
    return -1


def _step(st, t, a):
    """Token kind t at byte a: st (the items of each open container, then depth, the
    containers so far and the state) moves on by _GO, or _fail."""
    s = st[7]
    g = 0x78 if t < 0 else _GO[s * 8 + t]
    if g == 0x78:  # x
        _fail(a, s)
    depth = st[5]
    if t == 1 or t == 3:  # '}' ']'
        depth -= 1
    if g == 0x6E:  # n: after a value
        g = 0x37 if depth == 1 else 0x38 if depth else 0x39
    elif t == 4:  # ','
        st[depth] += 1
        if st[depth] == 16:
            _fail(a, 13)
    elif t == 0 or t == 2:  # '{' '['
        st[6] += 1
        if depth == 4:
            _fail(a, 11)
        if st[6] > 64:
            _fail(a, 12)
        depth += 1
        st[depth] = 0
    st[5] = depth
    st[7] = g - 0x30


def loads(data):
    """The object in data (bytes, bytearray or memoryview), read by the grammar above;
    ValueError ("byte N: what") when data is not exactly one such object."""
    n = len(data)
    if n > 600:
        raise ValueError("more than 600 bytes")
    d = bytes(data)
    st = bytearray(8)  # _step's: items by depth 1..4 (',' so far), depth, containers, state
    i = 0
    while i < n:
        if d[i] in b" \t\n\r":
            i += 1
            continue
        t = _token(d, i, n)
        _step(st, t & 7 if t >= 0 else -1, i)
        i = t >> 3
    if st[7] != 9:
        _fail(n, 10)
    out = json.loads(d)
    if out and len(out) != st[1] + 1:
        _fail(n, 17)
    return out
