"""A handler module whose import blocks while the file ``hold-import`` exists in the current
directory (at most 60 s): a reload whose parse is slow, for the SIGTERM test."""

from __future__ import annotations

import os
import threading
from typing import Any

from threadpool import TPHandle

_pause = threading.Event()
for _ in range(1200):
    if not os.path.exists("hold-import"):
        break
    _pause.wait(0.05)


def noop(item: Any, handle: TPHandle) -> None:
    pass
