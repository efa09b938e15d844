"""The other half of the inversion: ``b_then_a`` takes this module's lock, then
``lockorder_a``'s, the opposite of ``lockorder_a.a_then_b``."""

from __future__ import annotations

import threading
from typing import Any

from threadpool import TPHandle

LOCK_B = threading.Lock()


def b_then_a(item: Any, handle: TPHandle) -> None:
    from .lockorder_a import LOCK_A

    with LOCK_B, LOCK_A:
        pass
