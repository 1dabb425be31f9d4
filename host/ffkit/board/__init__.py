"""Boards: the link to a port, the protocol client, virtual and emulated boards, flashing
and the .mpy builds, the fuzzer.
"""
