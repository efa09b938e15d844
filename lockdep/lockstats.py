"""Per-class lock statistics (Linux's ``lock_stat``), kept per thread and merged on read;
and the watch for long waits (``wait_timeout``).

Each thread counts into its own records, so counting takes no shared lock and
loses nothing; ``merge`` adds the records of every thread (and of threads that
have exited) when someone asks. A record is a list:
``[acquisitions, contentions, wait total, wait max, hold total, hold max]``.
Only the tracker's checked path counts, so with statistics off nothing is paid.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from time import monotonic, perf_counter

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from typing import Any

ACQUISITIONS, CONTENTIONS, WAIT_TOTAL, WAIT_MAX, HOLD_TOTAL, HOLD_MAX = range(6)

Record = list[float]


def record_for(stats: dict[int, Record], class_id: int) -> Record:
    record = stats.get(class_id)
    if record is None:
        record = stats[class_id] = [0, 0, 0.0, 0.0, 0.0, 0.0]
    return record


def timed_acquire(
    record: Record, acquire: Callable[[bool, float], bool], blocking: bool, timeout: float
) -> bool:
    """Take a lock through acquire(blocking, timeout), counting into record.

    A first non-blocking attempt tells an uncontended acquisition from a
    contended one; only a contended one is timed.
    """
    if acquire(False, -1):
        record[ACQUISITIONS] += 1
        return True
    if not blocking:
        return False
    start = perf_counter()
    got = acquire(True, timeout)
    waited = perf_counter() - start
    record[CONTENTIONS] += 1
    record[WAIT_TOTAL] += waited
    if waited > record[WAIT_MAX]:
        record[WAIT_MAX] = waited
    if got:
        record[ACQUISITIONS] += 1
    return got


def count_hold(record: Record, seconds: float) -> None:
    record[HOLD_TOTAL] += seconds
    if seconds > record[HOLD_MAX]:
        record[HOLD_MAX] = seconds


def merge(into: dict[int, Record], source: dict[int, Record]) -> None:
    for cid, record in list(source.items()):
        total = into.get(cid)
        if total is None:
            into[cid] = list(record)
            continue
        for i in (ACQUISITIONS, CONTENTIONS, WAIT_TOTAL, HOLD_TOTAL):
            total[i] += record[i]
        for i in (WAIT_MAX, HOLD_MAX):
            total[i] = max(total[i], record[i])


def summarize(merged: dict[int, Record], names: Iterable[tuple[int, str]]) -> dict[str, Any]:
    """JSON-serialisable statistics keyed by class name."""
    out = {}
    for cid, name in names:
        record = merged.get(cid)
        if record is None:
            continue
        out[name] = {
            "acquisitions": int(record[ACQUISITIONS]),
            "contentions": int(record[CONTENTIONS]),
            "wait_seconds_total": record[WAIT_TOTAL],
            "wait_seconds_max": record[WAIT_MAX],
            "hold_seconds_total": record[HOLD_TOTAL],
            "hold_seconds_max": record[HOLD_MAX],
        }
    return out


def watched(
    acquire: Callable[[bool, float], bool], limit: float, on_long_wait: Callable[[float], None]
) -> Callable[[bool, float], bool]:
    """acquire, calling on_long_wait(seconds waited) once a blocking wait passes limit;
    the wait then goes on (for what is left of its own timeout)."""

    def watching(blocking: bool, timeout: float) -> bool:
        if not blocking or 0 <= timeout <= limit:
            return acquire(blocking, timeout)
        start = monotonic()
        if acquire(True, limit):
            return True
        on_long_wait(monotonic() - start)
        remaining = -1.0 if timeout < 0 else max(0.0, timeout - (monotonic() - start))
        return acquire(True, remaining)

    return watching
