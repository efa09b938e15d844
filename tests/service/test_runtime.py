"""runtime.py: pools built from a configuration and changed live; nothing dropped silently."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from threadpool import BatchWorkQueue, HeartbeatMap, PointerWQ, WorkQueueVal
from threadpool.service import runtime as runtime_module
from threadpool.service.config import PoolConfig, parse
from threadpool.service.runtime import ApplyError, Runtime

from .conftest import DEADLINE, HANDLERS, poll
from .handlers import Gate

JOIN = DEADLINE


def pools(*specs: dict[str, Any]) -> tuple[PoolConfig, ...]:
    return parse(yaml.safe_dump({"pools": list(specs)}), "config.yaml", Path("/")).pools


def pool(name: str = "main", threads: int = 2, *queues: dict[str, Any], **extra: Any) -> dict:
    return {"name": name, "threads": threads, "queues": list(queues), **extra}


def queue(name: str = "q", kind: str = "value", handler: str = "release", **extra: Any) -> dict:
    return {"name": name, "kind": kind, "handler": f"{HANDLERS}:{handler}", **extra}


@pytest.fixture
def rt() -> Iterator[Runtime]:
    runtime = Runtime(HeartbeatMap("test"))
    gates: list[Gate] = []
    runtime.gates = gates  # type: ignore[attr-defined]
    try:
        yield runtime
    finally:
        for gate in gates:
            gate.go.set()
        runtime.stop(5.0)


def gate(rt: Runtime) -> Gate:
    g = Gate.new()
    rt.gates.append(g)  # type: ignore[attr-defined]
    return g


def test_apply_builds_pools_whose_queues_process_items(rt: Runtime) -> None:
    rt.apply(pools(pool("main", 2, queue("v"), queue("b", "batch", "release_all"))), 5)
    events = [threading.Event() for _ in range(10)]
    for i, event in enumerate(events):
        assert rt.submit("main", "v" if i % 2 else "b", event)
    for event in events:
        assert event.wait(JOIN)
    live = rt.live("main")
    assert live is not None and live.pool.running and live.pool.heartbeat_map is rt.heartbeat_map
    assert isinstance(live.queues["v"][0], WorkQueueVal)
    assert isinstance(live.queues["b"][0], BatchWorkQueue)


def test_submit_to_a_queue_that_does_not_exist_takes_nothing(rt: Runtime) -> None:
    rt.apply(pools(pool("main", 1, queue("q"))), 5)
    assert rt.submit("main", "nosuch", 1) is False
    assert rt.submit("nosuch", "q", 1) is False
    assert rt.queued("main", "nosuch") is None


def test_apply_resizes_a_pool_live(rt: Runtime) -> None:
    rt.apply(pools(pool("main", 2, queue())), 5)
    live = rt.live("main")
    assert live is not None
    p = live.pool
    assert p.wait_for_threads(2, timeout=JOIN)
    for n in (4, 1, 0, 3):
        rt.apply(pools(pool("main", n, queue())), 5)
        assert rt.live("main") is live and p.num_threads == n
        assert p.wait_for_threads(n, timeout=JOIN), p.stats()


def test_apply_changes_queue_limits_keeping_the_queue(rt: Runtime) -> None:
    rt.apply(pools(pool("main", 1, queue("b", "batch", "release_all", batch_size=4))), 5)
    live = rt.live("main")
    assert live is not None
    q = live.queues["b"][0]
    changed = queue("b", "batch", "release_all", batch_size=9, timeout=3, suicide_timeout=30)
    rt.apply(pools(pool("main", 1, changed)), 5)
    assert live.queues["b"][0] is q
    assert (q.timeout, q.suicide_timeout) == (3.0, 30.0)
    assert isinstance(q, BatchWorkQueue) and q.batch_size == 9


def test_changing_kind_or_handler_replaces_the_queue(rt: Runtime) -> None:
    rt.apply(pools(pool("main", 1, queue("q", "value"))), 5)
    live = rt.live("main")
    assert live is not None
    old = live.queues["q"][0]
    rt.apply(pools(pool("main", 1, queue("q", "pointer"))), 5)
    new = live.queues["q"][0]
    assert new is not old and isinstance(new, PointerWQ) and old.pool is None
    event = threading.Event()
    assert rt.submit("main", "q", event) and event.wait(JOIN)


def test_removed_queue_is_drained_before_it_is_detached(rt: Runtime) -> None:
    rt.apply(pools(pool("main", 1, queue("keep"), queue("gone", handler="hold"))), 5)
    gates = [gate(rt) for _ in range(3)]
    for g in gates:
        assert rt.submit("main", "gone", g)
    assert gates[0].started.wait(JOIN)
    done = threading.Event()

    def remove() -> None:
        rt.apply(pools(pool("main", 1, queue("keep"))), JOIN)
        done.set()

    remover = threading.Thread(target=remove)
    remover.start()
    try:
        # The removal waits for the queue to drain; meanwhile it takes nothing new.
        assert not done.wait(0.2)
        assert rt.submit("main", "gone", gate(rt)) is False
    finally:
        for g in gates:
            g.go.set()
        remover.join(JOIN)
    assert done.is_set() and all(g.started.is_set() for g in gates)
    live = rt.live("main")
    assert live is not None and list(live.queues) == ["keep"]


def test_items_left_in_a_removed_queue_are_logged_by_count(
    rt: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    rt.apply(pools(pool("main", 0, queue("keep"), queue("gone"))), 5)
    for i in range(3):
        assert rt.submit("main", "gone", i)
    with caplog.at_level(logging.WARNING, "threadpool.service"):
        rt.apply(pools(pool("main", 0, queue("keep"))), 0.05)
    assert "main/gone: removed with 3 items unprocessed after the drain deadline" in caplog.text


def test_an_item_queued_while_its_queue_is_removed_is_reported(
    rt: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    rt.apply(pools(pool("main", 0, queue("keep"), queue("gone"))), 5)
    stale = dict(rt._inlets)  # what a producer racing the removal had looked up
    rt.apply(pools(pool("main", 0, queue("keep"))), 0.05)
    rt._inlets = stale
    with caplog.at_level(logging.WARNING, "threadpool.service"):
        assert rt.submit("main", "gone", "late") is False
    assert "main/gone: 1 items queued while the queue was being removed" in caplog.text
    assert stale[("main", "gone")][0].stats()["items"] == 0


def test_removed_pool_is_stopped_and_its_workers_leave_the_heartbeat_map(rt: Runtime) -> None:
    rt.apply(pools(pool("a", 2, queue()), pool("b", 1, queue())), 5)
    a, b = rt.live("a"), rt.live("b")
    assert a is not None and a.pool.wait_for_threads(2, timeout=JOIN)
    assert b is not None and b.pool.wait_for_threads(1, timeout=JOIN)
    assert rt.heartbeat_map.stats()["workers"] == 3
    rt.apply(pools(pool("b", 1, queue())), 5)
    assert rt.live("a") is None and not a.pool.running
    assert [p.name for p in rt.pools()] == ["b"]
    assert rt.heartbeat_map.stats()["workers"] == 1


def test_thread_name_change_replaces_the_pool(rt: Runtime) -> None:
    rt.apply(pools(pool("main", 1, queue(), thread_name="one")), 5)
    old = rt.live("main")
    rt.apply(pools(pool("main", 1, queue(), thread_name="two")), 5)
    new = rt.live("main")
    assert old is not None and new is not None and new is not old
    assert new.pool.thread_name == "two" and not old.pool.running


def test_stop_drains_queued_work_first(rt: Runtime) -> None:
    rt.apply(pools(pool("main", 2, queue())), 5)
    events = [threading.Event() for _ in range(50)]
    for event in events:
        rt.submit("main", "q", event)
    assert rt.stop(JOIN) == {}
    assert all(event.is_set() for event in events)
    assert rt.pools() == []


def test_stop_reports_what_is_left_after_the_deadline(
    rt: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    rt.apply(pools(pool("idle", 0, queue("q")), pool("main", 1, queue("r"))), 5)
    for i in range(4):
        rt.submit("idle", "q", i)
    with caplog.at_level(logging.WARNING, "threadpool.service"):
        left = rt.stop(0.05)
    assert left == {"idle/q": 4}
    assert "4 items left unprocessed after the drain deadline: idle/q: 4" in caplog.text


def test_stop_leaves_a_stuck_worker_behind_named_and_reports_its_item(
    rt: Runtime, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runtime_module, "STOP_GRACE", 0.1)
    rt.apply(pools(pool("main", 1, queue("q", handler="hold"))), 5)
    stuck = gate(rt)
    rt.submit("main", "q", stuck)
    rt.submit("main", "q", gate(rt))
    assert stuck.started.wait(JOIN)
    live = rt.live("main")
    assert live is not None
    (worker,) = live.pool.worker_threads()
    with caplog.at_level(logging.WARNING, "threadpool.service"):
        left = rt.stop(0.05)  # returns although the handler holds on
    assert left == {"main/q": 2}  # one in flight, one queued
    assert (
        "pool main: stopping; 1 workers still stuck in a handler 0.1s past the drain "
        "deadline, left behind: main thread 0 (queue 'q')"
    ) in caplog.text
    assert not live.pool.running and rt.pools() == []
    assert not any(t.name == "stopping main" for t in threading.enumerate())  # none left
    assert worker.is_alive()
    stuck.go.set()  # the worker finishes its unit, then exits
    worker.join(JOIN)
    assert not worker.is_alive()


# --- a queue whose removal failed (a pointer queue with an item stuck past the deadline) -------


def stuck_pointer_queue(rt: Runtime) -> Gate:
    """main/p: a pointer queue whose one item holds its worker until let go."""
    rt.apply(pools(pool("main", 2, queue("keep"), queue("p", "pointer", "hold"))), 5)
    stuck = gate(rt)
    assert rt.submit("main", "p", stuck)
    assert stuck.started.wait(JOIN)
    return stuck


def accepted(rt: Runtime, queue_name: str, n: int = 20) -> int:
    """How many of ``n`` items ``queue_name`` takes (each then processed)."""
    gates = [gate(rt) for _ in range(n)]
    for g in gates:
        g.go.set()
    count = sum(rt.submit("main", queue_name, g) for g in gates)
    assert all(g.started.wait(JOIN) for g in gates[:count])
    return count


def test_a_queue_whose_removal_failed_is_reachable_again_when_re_added(rt: Runtime) -> None:
    stuck = stuck_pointer_queue(rt)
    with pytest.raises(ApplyError, match="main/p could not be removed"):
        rt.apply(pools(pool("main", 2, queue("keep"))), 0.05)
    assert rt.submit("main", "p", gate(rt)) is False  # removed: takes nothing new
    stuck.go.set()
    live = rt.live("main")
    assert live is not None
    poll("the stuck item done", lambda: live.pool.stats()["queues"]["p"]["in_flight"] == 0)
    rt.apply(pools(pool("main", 2, queue("keep"), queue("p", "pointer", "hold"))), 0.05)
    assert accepted(rt, "p") == 20
    assert list(live.queues) == ["keep", "p"] and live.detaching == {}


def test_a_queue_whose_removal_failed_and_came_back_unchanged_is_the_same_queue(
    rt: Runtime,
) -> None:
    stuck = stuck_pointer_queue(rt)
    live = rt.live("main")
    assert live is not None
    old = live.queues["p"][0]
    with pytest.raises(ApplyError):
        rt.apply(pools(pool("main", 2, queue("keep"))), 0.05)
    rt.apply(pools(pool("main", 2, queue("keep"), queue("p", "pointer", "hold"))), 0.05)
    assert live.queues["p"][0] is old  # still attached, the same handler: taken back as is
    assert live.detaching == {}
    second = gate(rt)
    assert rt.submit("main", "p", second)
    stuck.go.set()
    second.go.set()
    assert second.started.wait(JOIN)


def test_replacing_a_busy_queue_finishes_once_it_detaches(rt: Runtime) -> None:
    stuck = stuck_pointer_queue(rt)
    replaced = pools(pool("main", 2, queue("keep"), queue("p", "pointer", "release")))
    with pytest.raises(ApplyError, match="main/p could not be removed"):
        rt.apply(replaced, 0.05)
    with pytest.raises(ApplyError, match="main/p: the queue it replaces still has items"):
        rt.apply(replaced, 0.05)  # another reload meanwhile: still pending, and said so
    assert rt.submit("main", "p", gate(rt)) is False  # neither the old nor the new one yet
    stuck.go.set()
    live = rt.live("main")
    assert live is not None
    poll("the stuck item done", lambda: live.pool.stats()["queues"]["p"]["in_flight"] == 0)
    rt.retry_detach()  # the periodic step retries the detach, then adds the new queue
    events = [threading.Event() for _ in range(20)]
    assert all(rt.submit("main", "p", event) for event in events)
    assert all(event.wait(JOIN) for event in events)
    (q, qc) = live.queues["p"]
    assert qc.handler.spec.endswith(":release") and q.pool is live.pool
