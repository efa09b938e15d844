"""A handler module with a lock of its own, made at import (for the instrumented service:
``a_then_b`` takes this module's lock, then ``lockorder_b``'s)."""

from __future__ import annotations

import threading
from typing import Any

from threadpool import TPHandle

LOCK_A = threading.Lock()


def a_then_b(item: Any, handle: TPHandle) -> None:
    from .lockorder_b import LOCK_B

    with LOCK_A, LOCK_B:
        pass
