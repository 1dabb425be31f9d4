"""CRC-32 (IEEE 802.3, reflected, the one zlib.crc32 and binascii.crc32 compute).

`crc32` is the port's `binascii.crc32` where it has one (CPython, the MicroPython unix,
rp2 and esp32 ports), else ffrt.crc32_py's table-driven pure-Python fallback for ports
built without it, loaded only there (a board with binascii never holds its code). Both
take any buffer (bytes, bytearray, memoryview) and chain:
``crc32(b, crc32(a)) == crc32(a + b)``.

>>> crc32(b"123456789") == 0xCBF43926
True
"""

try:
    from binascii import crc32
except ImportError:  # a port built without binascii.crc32: the fallback, by design
    from ffrt.crc32_py import crc32
