"""``ffkit flash`` step 2, sent with mpremote exec: what the board's MicroPython is and
loads, before anything on it changes. Prints ``FFKIT-PROBE <sys.platform> <_mpy> <_machine>``;
on an emulated board (ffkit.board.qemu) also ``FFKIT-COPIES <names>``, the files of its folder on
the host that its boot copies onto it (QEMU's -append "copy=...", still there), which
would undo a flash. No parameters.
"""
import sys
print('FFKIT-PROBE', sys.platform, getattr(sys.implementation, '_mpy', -1),
      getattr(sys.implementation, '_machine', '?'))
try:
    import ffkit_board  # type: ignore[import-not-found]  # ffkit.board.qemu's boards only
    for _w in ffkit_board.cmdline().split():
        if _w.startswith('copy='):
            print('FFKIT-COPIES', ' '.join(n for n in _w[5:].split(',')
                                          if n and ffkit_board.host_size(n) >= 0))
except ImportError:
    pass
