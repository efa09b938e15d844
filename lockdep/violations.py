"""Building violations from the facts detection gathered, and keeping account of them.

The tracker detects; the functions here make the ``Violation`` (with its text,
from ``report``), and ``ViolationLog`` counts every occurrence, remembers the
first of each distinct violation, and hands it to the configured response.
"""

from __future__ import annotations

import _thread
import sys
import threading
from collections import deque
from collections.abc import Callable, Sequence

from . import report
from .report import ChainLink, HeldLock, Site, Violation, safe_format

MAX_KEPT = 1000


def _new(kind: str, classes: Sequence[str], held: list[HeldLock]) -> Violation:
    return Violation(
        kind=kind,
        classes=tuple(classes),
        thread_name=threading.current_thread().name,
        thread_id=_thread.get_ident(),
        held=held,
        task=_current_task(),
    )


def _current_task() -> str | None:
    asyncio = sys.modules.get("asyncio")  # never imported just for this
    if asyncio is None:
        return None
    try:
        task = asyncio.current_task()
    except RuntimeError:  # no running loop in this thread
        return None
    return task.get_name() if task is not None else None


def recursive(
    held: list[HeldLock], taking: HeldLock, earlier: HeldLock, same_instance: bool
) -> Violation:
    v = _new("recursive", [taking.label], held)
    v.report = safe_format(v, lambda: report.format_recursive(v, taking, earlier, same_instance))
    return v


def order(
    held: list[HeldLock],
    taking: HeldLock,
    holding: HeldLock,
    cycle: list[str],
    chain: list[ChainLink],
) -> Violation:
    v = _new("order", cycle, held)
    v.chain = chain
    v.report = safe_format(v, lambda: report.format_order(v, taking, holding))
    return v


def unlock(held: list[HeldLock], lock_label: str, site: Site, holder: str | None) -> Violation:
    v = _new("unlock", [lock_label], held)
    v.report = safe_format(v, lambda: report.format_unlock(v, lock_label, site, holder))
    return v


def wait_timeout(
    held: list[HeldLock],
    lock_label: str,
    site: Site,
    waited: float,
    holders: list[tuple[str, HeldLock | None, list[str]]],
) -> Violation:
    v = _new("wait_timeout", [lock_label], held)
    v.report = safe_format(
        v, lambda: report.format_wait_timeout(v, lock_label, site, waited, holders)
    )
    return v


class ViolationLog:
    """Counts per kind, the distinct violations seen (the most recent MAX_KEPT), delivery.

    Thread-safe: its own raw lock, held only for bookkeeping, never while
    delivering.
    """

    def __init__(self) -> None:
        self._lock = _thread.allocate_lock()
        self.counts = dict.fromkeys(report.KINDS, 0)
        self._seen: set[tuple[str, frozenset[str]]] = set()
        self.kept: deque[Violation] = deque(maxlen=MAX_KEPT)

    def clear(self) -> None:
        with self._lock:
            self.counts = dict.fromkeys(report.KINDS, 0)
            self._seen.clear()
            self.kept.clear()

    def total(self) -> int:
        return sum(self.counts.values())

    def record(self, v: Violation) -> bool:
        """Count v; True if it is the first of its kind and classes."""
        with self._lock:
            self.counts[v.kind] += 1
            if v.key in self._seen:
                return False
            self._seen.add(v.key)
            self.kept.append(v)
            return True

    def deliver(self, v: Violation, response: str | Callable[[Violation], object]) -> None:
        """Record v and respond; with "log", repeats of one violation are only counted."""
        first = self.record(v)
        if response == "log" and not first:
            return
        report.deliver(v, response)

    def after_fork(self) -> None:
        self._lock = _thread.allocate_lock()
