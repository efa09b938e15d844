"""metrics.py: the collectors export the pools', heartbeat map's and lockdep's own counters."""

from __future__ import annotations

from collections.abc import Iterator
from time import monotonic
from typing import Any

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

import lockdep
from threadpool import BatchWorkQueue, HeartbeatMap, QueueFull, ThreadPool, WorkQueueVal
from threadpool.service import metrics
from threadpool.service.metrics import (
    LockdepCollector,
    PoolCollector,
    ServiceCollector,
    registry,
)

from .conftest import DEADLINE, poll, promtool_check
from .handlers import Gate, fail, hold, noop


def noop_1(item: Any) -> None:
    pass


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(*collectors: Any, process: bool = False) -> Samples:
    text = generate_latest(registry(*collectors, process=process)).decode()
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def at(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


class ItemsUnknown(WorkQueueVal):
    """Storage of its own: the queue cannot tell how many items it holds."""

    def _enqueue(self, item: Any) -> None:
        self._push(item)


@pytest.fixture
def busy_pool() -> Iterator[ThreadPool]:
    hb = HeartbeatMap("m")
    pool = ThreadPool("p", 2, heartbeat_map=hb)
    ok = WorkQueueVal("ok", noop, histograms=True)
    bad = WorkQueueVal("bad", fail)
    batch = BatchWorkQueue("batch", noop, batch_size=4, histograms=True)
    for q in (ok, bad, batch):
        pool.add_work_queue(q)
    pool.start()
    for i in range(10):
        ok.queue(i)
        batch.queue(i)
    for i in range(3):
        bad.queue(i)
    assert pool.drain(timeout=DEADLINE)
    assert pool.wait_for_threads(2, timeout=DEADLINE)
    try:
        yield pool
    finally:
        pool.stop()


def test_pool_and_queue_metrics_are_the_pools_own_counters(busy_pool: ThreadPool) -> None:
    s = scrape(PoolCollector(lambda: [busy_pool]))
    stats = busy_pool.stats()
    assert at(s, "threadpool_threads", pool="p") == stats["threads"] == 2
    assert at(s, "threadpool_threads_target", pool="p") == 2
    assert at(s, "threadpool_threads_busy", pool="p") == 0
    assert at(s, "threadpool_paused", pool="p") == 0
    for queue, processed, failed in (("ok", 10, 0), ("bad", 3, 3), ("batch", 10, 0)):
        labels = {"pool": "p", "queue": queue}
        assert at(s, "threadpool_items_processed_total", **labels) == processed
        assert at(s, "threadpool_items_failed_total", **labels) == failed
        assert at(s, "threadpool_queue_items", **labels) == 0
        assert at(s, "threadpool_queue_in_flight", **labels) == 0
        assert at(s, "threadpool_items_rejected_total", **labels) == 0
        assert at(s, "threadpool_items_expired_total", **labels) == 0
        assert at(s, "threadpool_items_dropped_total", **labels) == 0
        busy = stats["queues"][queue]["busy_seconds"]
        assert at(s, "threadpool_busy_seconds_total", **labels) == pytest.approx(busy)


def test_rejected_dropped_and_expired_are_the_queues_own_counters() -> None:
    pool = ThreadPool("b", 1)
    gate = Gate.new()
    holder = WorkQueueVal("holder", hold)
    refusing = WorkQueueVal("refusing", noop, max_items=2, policy="reject")
    dropping = WorkQueueVal("dropping", noop, max_items=2, policy="drop_oldest", on_drop=noop_1)
    timed = WorkQueueVal("timed", noop, deadline=0.001)
    for q in (holder, refusing, dropping, timed):
        pool.add_work_queue(q)
    pool.start()
    try:
        holder.queue(gate)
        assert gate.started.wait(DEADLINE)  # the one worker is held: nothing else runs
        refused = 0
        for i in range(5):
            dropping.queue(i)
            timed.queue(i)
            try:
                refusing.queue(i)
            except QueueFull:
                refused += 1
        end = monotonic() + 0.001
        poll("the deadlines passed", lambda: monotonic() > end)
    finally:
        gate.go.set()
    assert pool.drain(timeout=DEADLINE)
    s = scrape(PoolCollector(lambda: [pool]))
    pool.stop()
    assert refused == 3
    assert at(s, "threadpool_items_rejected_total", pool="b", queue="refusing") == 3
    assert at(s, "threadpool_items_processed_total", pool="b", queue="refusing") == 2
    assert at(s, "threadpool_items_dropped_total", pool="b", queue="dropping") == 3
    assert at(s, "threadpool_items_rejected_total", pool="b", queue="dropping") == 0
    assert at(s, "threadpool_items_processed_total", pool="b", queue="dropping") == 2
    assert at(s, "threadpool_items_expired_total", pool="b", queue="timed") == 5
    assert at(s, "threadpool_items_processed_total", pool="b", queue="timed") == 0
    for name in ("rejected", "dropped", "expired"):
        assert at(s, f"threadpool_items_{name}_total", pool="b", queue="holder") == 0


def test_histograms_pair_the_pools_buckets_with_le_labels(busy_pool: ThreadPool) -> None:
    s = scrape(PoolCollector(lambda: [busy_pool]))
    snap = busy_pool.stats()["queues"]["ok"]["item_duration_seconds"]
    labels = {"pool": "p", "queue": "ok"}
    found = sorted(
        (float(dict(k[1])["le"]), v)
        for k, v in s.items()
        if k[0] == "threadpool_item_duration_seconds_bucket" and dict(k[1])["queue"] == "ok"
    )
    assert [le for le, _ in found] == [*snap["bounds"], float("inf")]
    assert [count for _, count in found] == snap["counts"]
    assert at(s, "threadpool_item_duration_seconds_count", **labels) == 10
    assert at(s, "threadpool_item_duration_seconds_sum", **labels) == pytest.approx(snap["sum"])
    assert at(s, "threadpool_queue_wait_seconds_count", **labels) == 10
    batch = {"pool": "p", "queue": "batch"}
    assert at(s, "threadpool_queue_wait_seconds_count", **batch) == 10  # per item
    assert at(s, "threadpool_item_duration_seconds_count", **batch) <= 10  # per batch


def test_queue_without_histograms_has_no_histogram_series(busy_pool: ThreadPool) -> None:
    s = scrape(PoolCollector(lambda: [busy_pool]))
    names = {name for name, labels in s if ("queue", "bad") in labels}
    assert not any("duration" in n or "wait" in n for n in names), names


def test_queue_that_cannot_count_its_items_has_no_items_series() -> None:
    pool = ThreadPool("own", 0)
    pool.add_work_queue(ItemsUnknown("custom", noop))
    s = scrape(PoolCollector(lambda: [pool]))
    assert ("threadpool_queue_items", (("pool", "own"), ("queue", "custom"))) not in s
    assert at(s, "threadpool_items_processed_total", pool="own", queue="custom") == 0


def test_pools_are_read_at_each_scrape() -> None:
    pools: list[ThreadPool] = []
    collector = PoolCollector(lambda: pools)
    assert not any(k[0] == "threadpool_threads" for k in scrape(collector))
    pools.append(ThreadPool("late", 3))
    assert at(scrape(collector), "threadpool_threads_target", pool="late") == 3


def test_heartbeat_metrics_come_from_the_last_check() -> None:
    now = [100.0]
    hb = HeartbeatMap("clocked", clock=lambda: now[0])
    handle = hb.add_worker("w1")
    hb.add_worker("w2")
    hb.reset_timeout(handle, 1.0)
    now[0] += 5
    assert not hb.is_healthy()
    s = scrape(PoolCollector(lambda: [], hb))
    assert at(s, "threadpool_heartbeat_workers") == 2
    assert at(s, "threadpool_heartbeat_unhealthy_workers") == 1
    assert at(s, "threadpool_heartbeat_timeouts_total") == 1
    assert at(s, "threadpool_heartbeat_checks_total") == 1


def test_reload_counts_and_build_info() -> None:
    s = scrape(ServiceCollector(lambda: {"success": 3, "error": 2}, lambda: False, dict))
    assert at(s, "threadpool_config_reloads_total", result="success") == 3
    assert at(s, "threadpool_config_reloads_total", result="error") == 2
    assert at(s, "threadpool_config_last_reload_successful") == 0
    (info,) = [(k, v) for k, v in s.items() if k[0] == "threadpool_build_info"]
    assert info[1] == 1 and dict(info[0][1])["version"] == metrics.version()


def test_producers_up_or_dead() -> None:
    s = scrape(ServiceCollector(dict, lambda: True, lambda: {"scrubber": True, "feed": False}))
    assert at(s, "threadpool_producer_up", producer="scrubber") == 1
    assert at(s, "threadpool_producer_up", producer="feed") == 0


def test_lockdep_counters_and_violations_by_kind(collected: list[lockdep.Violation]) -> None:
    a, b = lockdep.Mutex("metrics_a"), lockdep.Mutex("metrics_b")
    with a, b:
        pass
    with b, a:
        pass
    assert [v.kind for v in collected] == ["order"]
    s = scrape(LockdepCollector())
    stats = lockdep.stats()
    assert at(s, "lockdep_enabled") == 1
    assert at(s, "lockdep_lock_classes") == stats["classes"] >= 2
    assert at(s, "lockdep_dependencies") == stats["edges"] >= 1
    assert at(s, "lockdep_checks_total") == stats["checks"]
    assert at(s, "lockdep_violations_total", kind="order") == 1
    for kind in ("recursive", "unlock", "wait_timeout"):
        assert at(s, "lockdep_violations_total", kind=kind) == 0


def test_no_per_class_series_while_lockdep_stats_are_off() -> None:
    with lockdep.Mutex("metrics_plain"):
        pass
    s = scrape(LockdepCollector())
    assert not any(k[0].startswith("lockdep_lock_wait") for k in s)


def test_per_class_series_with_lockdep_stats_on() -> None:
    lockdep.configure(stats=True)
    m = lockdep.Mutex("metrics_counted")
    for _ in range(3):
        with m:
            pass
    s = scrape(LockdepCollector())
    assert at(s, "lockdep_lock_acquisitions_total", lock="metrics_counted") == 3
    assert at(s, "lockdep_lock_contentions_total", lock="metrics_counted") == 0
    assert at(s, "lockdep_lock_wait_seconds_total", lock="metrics_counted") == 0
    assert at(s, "lockdep_lock_hold_seconds_total", lock="metrics_counted") >= 0


def test_per_class_series_are_the_top_n_by_wait_time(monkeypatch: pytest.MonkeyPatch) -> None:
    real = lockdep.stats()

    def record(wait: float) -> dict[str, float]:
        return {
            "acquisitions": 10,
            "contentions": 1,
            "wait_seconds_total": wait,
            "wait_seconds_max": wait,
            "hold_seconds_total": 1.0,
            "hold_seconds_max": 1.0,
        }

    locks = {f"class{i}": record(float(i)) for i in range(100)}
    monkeypatch.setattr(lockdep, "stats", lambda: real | {"locks": locks})
    top = [5]
    s = scrape(LockdepCollector(lambda: top[0]))
    exported = {dict(k[1])["lock"] for k in s if k[0] == "lockdep_lock_wait_seconds_total"}
    assert exported == {f"class{i}" for i in range(95, 100)}
    assert at(s, "lockdep_lock_wait_seconds_total", lock="class99") == 99.0
    top[0] = 0
    assert not any(
        k[0] == "lockdep_lock_wait_seconds_total" for k in scrape(LockdepCollector(lambda: top[0]))
    )


def test_promtool_finds_no_problem_in_the_exposition(busy_pool: ThreadPool) -> None:
    lockdep.configure(stats=True)
    with lockdep.Mutex("metrics_promtool"):
        pass
    hb = busy_pool.heartbeat_map
    body = generate_latest(
        registry(
            PoolCollector(lambda: [busy_pool], hb),
            ServiceCollector(lambda: {"success": 1, "error": 0}, lambda: True, lambda: {"p": True}),
            LockdepCollector(),
        )
    )
    promtool_check(body)
