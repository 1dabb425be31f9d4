"""CRC-32 in pure Python, for ports built without binascii.crc32 (ffrt.crc32 picks it).

The register is kept as two 16-bit halves and the table as two array('H') (1 KB, built
on first use), so the inner loop forms no int above 2**16: no long ints on a 32-bit
board, where small ints stop at 2**30. Only the 32-bit value it takes and returns is a
long int there (as binascii.crc32's result is too); that happens once per call, outside
the loop, which is acceptable.

>>> crc32(b"123456789") == 0xCBF43926
True
>>> crc32(b"6789", crc32(b"12345")) == 0xCBF43926
True
"""

from array import array

_POLY_HI = 0xEDB8  # 0xEDB88320, the reflected IEEE polynomial, as halves
_POLY_LO = 0x8320
_T = []  # type: list  # [t_hi, t_lo] once built


def _table():
    t_hi = array("H", bytes(512))
    t_lo = array("H", bytes(512))
    for n in range(256):
        hi = 0
        lo = n
        for _ in range(8):
            odd = lo & 1
            lo = (lo >> 1) | ((hi & 1) << 15)
            hi >>= 1
            if odd:
                hi ^= _POLY_HI
                lo ^= _POLY_LO
        t_hi[n] = hi
        t_lo[n] = lo
    _T[:] = [t_hi, t_lo]


def crc32(data, crc=0):
    """CRC-32 of data continuing from crc, in pure Python with 16-bit intermediates."""
    if not _T:
        _table()
    t_hi, t_lo = _T
    hi = ((crc >> 16) & 0xFFFF) ^ 0xFFFF
    lo = (crc & 0xFFFF) ^ 0xFFFF
    for b in data:
        i = (lo ^ b) & 0xFF
        lo = ((lo >> 8) | ((hi & 0xFF) << 8)) ^ t_lo[i]
        hi = (hi >> 8) ^ t_hi[i]
    return ((hi ^ 0xFFFF) << 16) | (lo ^ 0xFFFF)
