"""Progress bars: one tqdm bar on stderr, drawn only when stderr is a terminal.

Every bar ffkit shows (training, choosing a model, transfers, ffkit stream) comes from
``progress_bar``, so a CI log or a redirected stderr never fills with a bar's redraws;
the bar object is still there to update (tqdm's disabled bar), so callers need no test.
"""

import sys


def progress_bar(total, desc, unit, enabled=True, unit_scale=False):
    """A tqdm bar of ``total`` ``unit``s on stderr; silent unless ``enabled`` and stderr is
    a terminal. ``unit_scale``: counts as 1.2kB rather than 1234B (tqdm's)."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, unit_scale=unit_scale, file=sys.stderr,
                leave=False, dynamic_ncols=True,
                disable=not enabled or not sys.stderr.isatty())
