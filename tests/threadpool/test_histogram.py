"""Histogram: bucket counters in Prometheus' shape."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from threadpool import Histogram
from threadpool.histogram import DEFAULT_BOUNDS


def test_bounds_are_inclusive_upper_bounds() -> None:
    h = Histogram((1.0, 2.0))
    for v in (0.5, 1.0, 1.5, 2.0, 3.0):
        h.observe(v)
    snap = h.snapshot()
    assert snap == {"bounds": [1.0, 2.0], "counts": [2, 4, 5], "sum": 8.0, "count": 5}
    json.dumps(snap)


@given(st.lists(st.floats(min_value=0, max_value=1000, allow_nan=False), max_size=200))
def test_snapshot_is_cumulative_and_counts_every_observation(values: list[float]) -> None:
    h = Histogram()
    for v in values:
        h.observe(v)
    snap = h.snapshot()
    counts = snap["counts"]
    assert counts == sorted(counts)
    assert counts[-1] == snap["count"] == h.count == len(values)
    for bound, count in zip(DEFAULT_BOUNDS, counts, strict=False):
        assert count == sum(1 for v in values if v <= bound)
    assert snap["sum"] == pytest.approx(sum(values))


@pytest.mark.parametrize("bounds", [(), (2.0, 1.0), (1.0, 1.0)])
def test_bounds_must_ascend(bounds: tuple[float, ...]) -> None:
    with pytest.raises(ValueError, match="distinct and ascending"):
        Histogram(bounds)
