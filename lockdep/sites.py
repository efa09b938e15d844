"""Where an acquisition is recorded: the user's line, not a standard library wrapper's.

``threading.Condition.__enter__`` and ``wait_for``, ``logging.Handler.acquire``,
``queue.Queue.get``, ``Future.result``, ... take a lock for their caller: an
acquisition made in one of them records the first frame outside them, so that
reports name the user's line (SPEC 3.7). ``THIN_WRAPPERS`` lists them, by
file: all the functions of the file (None), or the names given. The C hot path
(``fastpath``) reads the same dict, and remembers its verdict per code object:
the dict does not change.
"""

from __future__ import annotations

import os
import threading
from types import FrameType

_STDLIB = os.path.dirname(os.path.abspath(os.__file__))
# File -> the thin wrappers in it whose frames an acquisition site skips (None: all).
THIN_WRAPPERS: dict[str, frozenset[str] | None] = {
    os.path.abspath(threading.__file__ or "threading.py"): None,
    os.path.join(_STDLIB, "queue.py"): None,
    os.path.join(_STDLIB, "concurrent", "futures", "_base.py"): None,
    os.path.join(_STDLIB, "logging", "__init__.py"): frozenset({"acquire", "_acquireLock"}),
}
_NOT_THIN = frozenset[str]()


def user_frame(frame: FrameType) -> FrameType:
    """frame, or the first caller outside the standard library's thin wrappers."""
    while True:
        code = frame.f_code
        names = THIN_WRAPPERS.get(code.co_filename, _NOT_THIN)
        if names is _NOT_THIN or (names is not None and code.co_name not in names):
            return frame
        back = frame.f_back
        if back is None:
            return frame
        frame = back
