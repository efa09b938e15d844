"""Bucket counters for durations, read at scrape time (no Prometheus import).

``Histogram.observe(seconds)`` adds one observation: a bisection over the
bucket bounds and two additions. It is not thread-safe by itself; the pool
only observes with its lock held, and ``snapshot()`` is taken the same way.

``snapshot()`` returns a JSON-serialisable dict in Prometheus' shape:
``bounds`` (the finite upper bounds, seconds, ascending), ``counts``
(cumulative counts, one per bound plus a last one for +Inf, which equals
``count``), ``sum`` (seconds) and ``count``. An exporter pairs ``bounds`` with
``counts`` as ``le`` buckets and adds ``"+Inf"`` for the last count.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Any

# 10 microseconds to 5 minutes: no-op items to stuck ones.
DEFAULT_BOUNDS: tuple[float, ...] = (
    0.00001,
    0.000025,
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
)


class Histogram:
    """Counts of observations per bucket (upper bounds inclusive, as Prometheus' ``le``)."""

    __slots__ = ("_bounds", "_counts", "_sum")

    def __init__(self, bounds: tuple[float, ...] = DEFAULT_BOUNDS) -> None:
        if list(bounds) != sorted(set(bounds)) or not bounds:
            raise ValueError(f"histogram bounds must be distinct and ascending, got {bounds!r}")
        self._bounds = bounds
        self._counts = [0] * (len(bounds) + 1)
        self._sum = 0.0

    def observe(self, seconds: float) -> None:
        self._counts[bisect_left(self._bounds, seconds)] += 1
        self._sum += seconds

    @property
    def count(self) -> int:
        return sum(self._counts)

    def snapshot(self) -> dict[str, Any]:
        cumulative = []
        running = 0
        for n in self._counts:
            running += n
            cumulative.append(running)
        return {
            "bounds": list(self._bounds),
            "counts": cumulative,
            "sum": self._sum,
            "count": running,
        }
