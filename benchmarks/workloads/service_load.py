"""Handlers and a producer for ``benchmarks/service_load.py``: a flood of small items.

``Flood`` keeps each of its queues at about ``depth`` items, so that the workers never
run dry; ``checksum`` does a little real work per item (hashes 4 KiB), ``checksums``
does it for a batch, and ``tally`` (a finish step, under the pool lock) adds it up. The
handlers take a lock of their own module around the tally, so that an instrumented
service (``lockdep.instrument``) has user locks to track.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any

BLOCK = bytes(4096)
_lock = threading.Lock()
_count = 0


def checksum(item: Any, handle: Any) -> None:
    global _count
    hashlib.sha256(BLOCK).digest()
    with _lock:
        _count += 1


def checksums(items: list[Any], handle: Any) -> None:
    for item in items:
        checksum(item, handle)


def tally(item: Any) -> None:
    pass


class Flood:
    """Keeps ``queues`` (``[pool, queue]`` pairs) at about ``depth`` items each."""

    def __init__(self, settings: dict[str, Any], *, base_dir: Path) -> None:
        self.queues = [tuple(q) for q in settings["queues"]]
        self.depth = int(settings.get("depth", 1000))

    def run(self, ctx: Any) -> None:
        n = 0
        while not ctx.stopping:
            idle = True
            for pool, queue in self.queues:
                waiting = ctx.queued(pool, queue)
                if waiting is None:
                    continue
                for _ in range(max(self.depth - waiting, 0)):
                    ctx.submit(pool, queue, n)
                    n += 1
                    idle = False
            if idle:
                ctx.wait(0.005)
