"""The entries of a queue with deadlines (threadpool/timeline.py): the C Timeline and
the Python one behave as a deque of entries with put/take/tail, checked against a
plain model; references are kept and given back; re-entry from a finalizer is safe."""

from __future__ import annotations

import gc
import os
import time
import weakref
from collections import deque
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from threadpool import timeline
from threadpool.timeline import INF, PyTimeline

NOTHING = object()

try:
    from threadpool._timeline import Timeline as CTimeline
except ImportError:  # not built here: the C cases fail in CI (REQUIRE_C_FASTPATH), else skip
    CTimeline = None

PURE = os.environ.get(timeline.PURE_VARIABLE, "") not in ("", "0")


def _c() -> Any:
    if CTimeline is None:
        if os.environ.get("REQUIRE_C_FASTPATH"):
            pytest.fail("REQUIRE_C_FASTPATH is set but threadpool._timeline was not built")
        pytest.skip("threadpool._timeline was not built here")
    return CTimeline


IMPLS = [pytest.param(lambda: PyTimeline, id="python"), pytest.param(_c, id="c")]


@pytest.fixture(params=IMPLS)
def cls(request: pytest.FixtureRequest) -> Any:
    return request.param()


def test_the_queues_use_c_where_it_was_built_unless_told_not_to() -> None:
    if PURE:
        assert timeline.IMPLEMENTATION == "python"
    elif CTimeline is not None or os.environ.get("REQUIRE_C_FASTPATH"):
        assert timeline.IMPLEMENTATION == "c"


class Model:
    """A deque of entries and a tail: what a Timeline must be."""

    def __init__(self) -> None:
        self.entries: deque[Any] = deque()
        self.tail = -INF


Op = tuple[str, Any]

entries = st.one_of(
    st.tuples(st.floats(allow_nan=False), st.integers()),  # compact in C
    st.tuples(st.integers(), st.integers()),  # an int expiry: kept as the tuple
    st.builds(lambda e, i: [e, i], st.floats(allow_nan=False), st.integers()),  # heap entry
    st.tuples(st.floats(allow_nan=False), st.integers(), st.floats(allow_nan=False)),
)
ops = st.one_of(
    st.tuples(st.just("append"), entries),
    st.tuples(st.just("appendleft"), entries),
    st.tuples(st.just("popleft"), st.none()),
    st.tuples(st.just("take"), st.floats(allow_nan=False, allow_infinity=True)),
    st.tuples(st.just("put"), st.floats(min_value=-1e6, max_value=1e6)),
    st.tuples(st.just("tail"), st.floats(allow_nan=False)),
    st.tuples(st.just("del"), st.integers(min_value=-40, max_value=40)),
    st.tuples(st.just("clear"), st.none()),
)


def apply(t: Any, m: Model, op: Op, n: int) -> None:
    name, arg = op
    if name in ("append", "appendleft"):
        getattr(t, name)(arg)
        getattr(m.entries, name)(arg)
    elif name == "popleft":
        if m.entries:
            assert t.popleft() == m.entries.popleft()
        else:
            with pytest.raises(IndexError):
                t.popleft()
    elif name == "take":
        front = m.entries[0] if m.entries else None
        takes = (
            type(front) is tuple and len(front) == 2 and type(front[0]) is float and front[0] > arg
        )
        got = t.take(arg)
        if takes:
            assert got == m.entries.popleft()[1]
        else:
            assert got is NOTHING
    elif name == "put":
        before = time.monotonic()
        done = t.put(n, arg)
        after = time.monotonic()
        if done:
            expires = t[-1][0]
            assert before + arg <= expires <= after + arg
            assert expires >= m.tail
            m.tail = expires
            m.entries.append((expires, n))
        else:
            assert before + arg < m.tail  # it would have expired before the tail
    elif name == "tail":
        t.tail = arg
        m.tail = arg
    elif name == "del":
        if -len(m.entries) <= arg < len(m.entries):
            del t[arg]
            del m.entries[arg]
        else:
            with pytest.raises(IndexError):
                del t[arg]
    elif name == "clear":
        t.clear()
        m.entries.clear()


@settings(max_examples=150, deadline=None)
@given(st.lists(ops, max_size=80), st.sampled_from(["python", "c"]))
def test_a_timeline_behaves_as_its_model(steps: list[Op], which: str) -> None:
    cls = PyTimeline if which == "python" else _c()
    t = cls(NOTHING)
    m = Model()
    for n, op in enumerate(steps):
        apply(t, m, op, n)
        assert list(t) == list(m.entries)
        assert len(t) == len(m.entries)
        assert bool(t) == bool(m.entries)
        assert t.tail == m.tail
        for i in (0, -1):
            if m.entries:
                assert t[i] == m.entries[i]


def test_heap_entries_keep_their_identity(cls: Any) -> None:
    t = cls(NOTHING)
    entry = [1.0, "x"]
    t.append(entry)
    t.append((2.0, "y"))
    assert t[0] is entry
    entry[1] = "gone"
    assert t.popleft() == [1.0, "gone"]


def test_many_entries_grow_and_shrink_the_ring_in_order(cls: Any) -> None:
    t = cls(NOTHING)
    for i in range(10_000):
        t.append((float(i), i))
        if i % 3 == 0:
            t.appendleft([-float(i), i])
    out = [t.popleft() for _ in range(len(t))]
    assert [e[1] for e in out if type(e) is tuple] == list(range(10_000))
    assert not t
    t.append((1.0, "after"))
    assert t.take(0.0) == "after"


def test_take_leaves_an_expired_or_other_front_entry_alone(cls: Any) -> None:
    t = cls(NOTHING)
    assert t.take(0.0) is NOTHING
    t.append((5.0, "a"))
    assert t.take(5.0) is NOTHING  # expires at 5: expired by 5
    assert t.take(4.9) == "a"
    t.append((INF, "forever"))
    assert t.take(1e300) == "forever"
    t.append((5.0, "a", 0.0))
    assert t.take(0.0) is NOTHING
    assert len(t) == 1


def test_put_keeps_the_order_and_refuses_what_would_expire_earlier(cls: Any) -> None:
    t = cls(NOTHING)
    assert t.tail == -INF
    assert t.put("far", 3600.0)
    assert t.tail == t[0][0]
    assert not t.put("near", 1.0)  # before the tail: the caller gives it a timer
    assert len(t) == 1
    t.tail = INF
    assert not t.put("far again", 3600.0)
    assert t.put("int deadline", 0) is False
    t.tail = -INF
    assert t.put("int deadline", 7200)
    assert t[-1][1] == "int deadline"


def test_bad_arguments_are_refused_and_change_nothing(cls: Any) -> None:
    t = cls(NOTHING)
    t.append((1.0, "a"))
    with pytest.raises(TypeError):
        t.put("x", "soon")
    with pytest.raises(TypeError):
        t.take("now")
    with pytest.raises(IndexError):
        t[1]
    with pytest.raises(TypeError):
        t[0] = (2.0, "b")
    with pytest.raises(TypeError):
        t.tail = "late"
    assert list(t) == [(1.0, "a")]
    t.clear()
    with pytest.raises(IndexError):
        t.popleft()


class Tracked:
    pass


def test_references_are_given_back_by_every_way_out(cls: Any) -> None:
    t = cls(NOTHING)
    items = [Tracked() for _ in range(6)]
    refs = [weakref.ref(x) for x in items]
    t.append((1.0, items[0]))
    t.append([1.0, items[1]])
    t.put(items[2], 10.0)
    t.append((INF, items[3]))
    t.append((2.0, items[4], 0.0))
    t.append((3.0, items[5]))
    del items
    t.popleft()
    t.take(-INF)  # a heap entry at the front: not taken
    del t[0]
    assert t.take(0.0) is not NOTHING
    gc.collect()
    assert [r() is None for r in refs] == [True, True, True, False, False, False]
    t.clear()
    gc.collect()
    assert all(r() is None for r in refs)


def test_a_cycle_through_a_timeline_is_collected(cls: Any) -> None:
    t = cls(NOTHING)
    holder = Tracked()
    holder.timeline = t  # type: ignore[attr-defined]
    t.append((1.0, holder))
    ref = weakref.ref(holder)
    del t, holder
    gc.collect()
    assert ref() is None


class Requeues:
    """An item whose finalizer appends to the timeline it leaves."""

    def __init__(self, t: Any) -> None:
        self.t = t

    def __del__(self) -> None:
        self.t.append((9.0, "from a finalizer"))


def test_a_finalizer_run_by_a_removal_may_use_the_timeline(cls: Any) -> None:
    for remove in ("popleft", "take", "del", "clear"):
        t = cls(NOTHING)
        t.append((1.0, Requeues(t)))
        t.append((2.0, "next"))
        if remove == "popleft":
            t.popleft()
        elif remove == "take":
            t.take(0.0)
        elif remove == "del":
            del t[0]
        else:
            t.clear()
        gc.collect()
        rest = [e[1] for e in t]
        assert "from a finalizer" in rest, remove
        assert ("next" in rest) == (remove != "clear"), remove


def test_the_collector_running_inside_a_method_may_change_the_timeline(cls: Any) -> None:
    """Making a tuple may run the garbage collector (before 3.12, at once), and with it
    finalizers that use the Timeline: popleft, indexing and iteration read the ring
    again after it."""
    t = cls(NOTHING)
    taken: list[Any] = []

    class Popper:
        def __init__(self, clear: bool) -> None:
            self.me = self  # a cycle: only the collector frees it
            self.clear = clear

        def __del__(self) -> None:
            if self.clear:
                t.clear()
            elif t:
                taken.append(t.popleft())

    def collector_pending(clear: bool) -> list[Any]:
        """A Popper waiting for the collector, which runs at the next allocation of a
        tracked object; and no spare pairs, so that making a tuple is one."""
        Popper(clear)
        return [(i, -i) for i in range(3000)]  # more than the free list of pairs holds

    n = 100
    for i in range(n):
        t.append((float(i), i))
    gc.collect()
    gc.disable()
    try:
        for _ in range(40):
            hold = collector_pending(False)
            gc.enable()
            taken.append(t.popleft())  # the collector runs in here: its Popper pops first
            gc.disable()
            del hold
        gc.collect()
        while t:
            taken.append(t.popleft())
        for make in (list, lambda t: t[0]):
            hold = collector_pending(True)
            t.append((1.0, "x"))
            gc.enable()
            try:
                got = make(t)
            except IndexError:  # the collector ran before the look: nothing to see
                got = []
            gc.disable()
            del hold
            assert got in ([], [(1.0, "x")], (1.0, "x"))
    finally:
        gc.enable()
    values = sorted(e[1] for e in taken)  # 3.12+ collects at the next eval-breaker check
    assert values == list(range(n))  # each once, whoever took it


def test_many_entries_across_blocks_behave_as_the_model(cls: Any) -> None:
    """Thousands of entries (many blocks of the C one): removals at any place, from both
    ends, indexing from both ends, all against the model."""
    import random

    rng = random.Random(7)
    t = cls(NOTHING)
    m = Model()
    for n in range(6000):
        r = rng.random()
        if r < 0.45:
            entry: Any = (float(n), n) if n % 5 else [float(n), n]
            t.append(entry)
            m.entries.append(entry)
        elif r < 0.6:
            t.appendleft((float(-n), n))
            m.entries.appendleft((float(-n), n))
        elif r < 0.75 and m.entries:
            assert t.popleft() == m.entries.popleft()
        elif r < 0.85 and m.entries:
            i = rng.randrange(-len(m.entries), len(m.entries))
            del t[i]
            del m.entries[i]
        elif m.entries:
            i = rng.randrange(len(m.entries))
            assert t[i] == m.entries[i]
            assert t[-1 - i] == m.entries[-1 - i]
        if n % 500 == 0:
            assert list(t) == list(m.entries)
    assert list(t) == list(m.entries)
    while m.entries:
        assert t.popleft() == m.entries.popleft()
    assert len(t) == 0
    assert t.put("again", 1.0)
    assert t.take(0.0) == "again"
