"""Bounded queues, deadlines and sharded queues from config.yaml: built, counted in /metrics,
changed live on reload where a queue can change in place, replaced where it cannot."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from time import monotonic
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from threadpool import QueueFull, ShardedWorkQueue, WorkQueueVal
from threadpool.service.service import Service

from . import handlers
from .conftest import DEADLINE, HANDLERS, Services, doc, poll, request, write
from .handlers import Gate


@pytest.fixture(autouse=True)
def fresh_records() -> Iterator[None]:
    handlers.DROPPED.clear()
    handlers.EXPIRED.clear()
    handlers.KEY_ORDER = handlers.KeyOrder()
    yield


def queue(name: str, handler: str = "noop", kind: str = "value", **keys: Any) -> dict[str, Any]:
    return {"name": name, "kind": kind, "handler": f"{HANDLERS}:{handler}", **keys}


def document(threads: int, *queues: dict[str, Any]) -> dict[str, Any]:
    return doc(pools=[{"name": "main", "threads": threads, "queues": list(queues)}])


def metric(service: Service, name: str, queue: str) -> float | None:
    """The value of ``name{pool="main",queue=...}`` in the service's /metrics text."""
    status, _headers, body = request(service.url, "/metrics")
    assert status == 200
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            if sample.name == name and sample.labels == {"pool": "main", "queue": queue}:
                return float(sample.value)
    return None


def the_queue(service: Service, name: str) -> Any:
    live = service.runtime.live("main")
    assert live is not None
    return live.queues[name][0]


def hold_the_worker(service: Service) -> Gate:
    """The pool's one worker, held by an item of queue ``holder`` until let go."""
    gate = Gate.new()
    assert service.runtime.submit("main", "holder", gate)
    assert gate.started.wait(DEADLINE)
    return gate


HOLDER = queue("holder", "hold")


# --- bounded queues ---------------------------------------------------------------------------


def test_a_full_queue_under_reject_refuses_and_metrics_count_each_refusal(
    services: Services,
) -> None:
    service = services.start(document(0, queue("q", max_items=3)))  # no worker: nothing leaves
    refused = 0
    for i in range(8):
        try:
            assert service.runtime.submit("main", "q", i)
        except QueueFull as exc:
            assert "queue 'q' is full (max_items 3, policy 'reject')" in str(exc)
            refused += 1
    assert refused == 5
    assert metric(service, "threadpool_items_rejected_total", "q") == 5
    assert metric(service, "threadpool_queue_items", "q") == 3
    assert metric(service, "threadpool_items_dropped_total", "q") == 0


def test_block_waits_then_refuses_past_block_timeout_counted(services: Services) -> None:
    q = queue("q", max_items=1, policy="block", block_timeout=0.05)
    service = services.start(document(0, q))
    assert service.runtime.submit("main", "q", 1)
    with pytest.raises(QueueFull, match="policy 'block'"):
        service.runtime.submit("main", "q", 2)
    assert metric(service, "threadpool_items_rejected_total", "q") == 1


def test_drop_oldest_hands_the_dropped_items_over_and_has_its_own_series(
    services: Services,
) -> None:
    q = queue("q", max_items=2, policy="drop_oldest", on_drop=f"{HANDLERS}:dropped")
    service = services.start(document(0, q))
    for i in range(5):
        assert service.runtime.submit("main", "q", i)
    assert handlers.DROPPED == [0, 1, 2]
    assert metric(service, "threadpool_items_dropped_total", "q") == 3
    assert metric(service, "threadpool_items_rejected_total", "q") == 0
    assert the_queue(service, "q").clear() == [3, 4]


def test_caller_runs_processes_the_item_on_the_producers_thread(services: Services) -> None:
    q = queue("q", "collect", max_items=1, policy="caller_runs")
    service = services.start(document(0, q))
    handlers.SEEN.clear()
    assert service.runtime.submit("main", "q", "queued")
    assert service.runtime.submit("main", "q", "ran here")  # taken: run by this thread
    assert handlers.SEEN == ["ran here"]
    assert metric(service, "threadpool_items_processed_total", "q") == 1


# --- deadlines --------------------------------------------------------------------------------


def test_items_past_the_queues_deadline_expire_unprocessed_and_are_counted(
    services: Services,
) -> None:
    timed = queue("timed", "collect", deadline=0.01, on_expire=f"{HANDLERS}:expired")
    service = services.start(document(1, HOLDER, timed))
    handlers.SEEN.clear()
    gate = hold_the_worker(service)
    try:
        for i in range(4):
            assert service.runtime.submit("main", "timed", i)
        assert service.runtime.submit("main", "timed", "far", deadline=DEADLINE * 10)
        end = monotonic() + 0.01
        poll("the default deadline passed", lambda: monotonic() > end)
    finally:
        gate.go.set()
    poll("4 expired", lambda: metric(service, "threadpool_items_expired_total", "timed") == 4)
    poll("1 processed", lambda: metric(service, "threadpool_items_processed_total", "timed") == 1)
    assert sorted(handlers.EXPIRED) == [0, 1, 2, 3]
    assert handlers.SEEN == ["far"]  # the far deadline's item, never an expired one


def test_a_deadline_on_a_queue_without_deadlines_is_a_clear_error(services: Services) -> None:
    service = services.start(document(0, queue("q")))
    with pytest.raises(TypeError, match="main/q takes no deadlines: give the queue a deadline"):
        service.runtime.submit("main", "q", 1, deadline=5)
    assert metric(service, "threadpool_queue_items", "q") == 0


# --- sharded queues ---------------------------------------------------------------------------


def test_a_sharded_queue_keeps_each_keys_order_and_runs_keys_in_parallel(
    services: Services,
) -> None:
    q = queue("s", "in_key_order", "sharded", shards=4, key=f"{HANDLERS}:shard_key")
    service = services.start(document(4, q))
    assert isinstance(the_queue(service, "s"), ShardedWorkQueue)
    assert the_queue(service, "s").num_shards == 4
    for i in range(200):
        assert service.runtime.submit("main", "s", (f"k{i % 10}", i))
    live = service.runtime.live("main")
    assert live is not None and live.pool.drain(timeout=DEADLINE)
    order = handlers.KEY_ORDER
    assert order.overlaps == 0
    assert {k: v for k, v in order.values.items()} == {
        f"k{k}": list(range(k, 200, 10)) for k in range(10)
    }
    assert metric(service, "threadpool_items_processed_total", "s") == 200


def test_a_sharded_queue_without_a_key_function_takes_the_key_from_the_producer(
    services: Services,
) -> None:
    q = queue("s", "in_key_order", "sharded", shards=2)
    service = services.start(document(1, q))
    assert service.runtime.submit("main", "s", ("a", 1), key="a")
    with pytest.raises(TypeError, match="main/s is a sharded queue with no key function"):
        service.runtime.submit("main", "s", ("a", 2))
    with pytest.raises(TypeError, match="main/s is a sharded queue: its items take no deadline"):
        service.runtime.submit("main", "s", ("a", 2), key="a", deadline=5)
    live = service.runtime.live("main")
    assert live is not None and live.pool.drain(timeout=DEADLINE)
    assert handlers.KEY_ORDER.values == {"a": [1]}


def test_only_sharded_queues_take_a_key(services: Services) -> None:
    service = services.start(document(0, queue("q")))
    with pytest.raises(TypeError, match="main/q is a value queue: only sharded queues take a key"):
        service.runtime.submit("main", "q", 1, key="k")


# --- reloads ----------------------------------------------------------------------------------


def reload(services: Services, service: Service, new: dict[str, Any]) -> None:
    write(services.tmp_path / "config.yaml", new)
    assert service.reload("test")


def test_a_reload_changes_bound_policy_and_deadline_in_place(
    services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    service = services.start(document(0, queue("q", max_items=2, deadline=30)))
    q = the_queue(service, "q")
    assert isinstance(q, WorkQueueVal) and (q.max_items, q.policy, q.deadline) == (2, "reject", 30)
    changed = queue("q", max_items=5, policy="drop_oldest", deadline=60)
    with caplog.at_level(logging.INFO, "threadpool.service"):
        reload(services, service, document(0, changed))
    assert the_queue(service, "q") is q
    assert (q.max_items, q.policy, q.deadline) == (5, "drop_oldest", 60)
    assert "main/q: max_items 2 -> 5, policy reject -> drop_oldest, deadline 30 -> 60" in (
        caplog.text
    )
    for i in range(5):
        assert service.runtime.submit("main", "q", i)  # room for five now
    reload(services, service, document(0, queue("q", deadline=60)))  # unbounded again
    assert the_queue(service, "q") is q and q.max_items is None


def test_giving_a_queue_a_deadline_replaces_it_saying_why(
    services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    service = services.start(document(1, queue("q")))
    old = the_queue(service, "q")
    with caplog.at_level(logging.INFO, "threadpool.service"):
        reload(services, service, document(1, queue("q", deadline=5)))
    new = the_queue(service, "q")
    assert new is not old and new.deadline == 5 and old.pool is None
    assert "main/q: replaced (deadline given changed; a queue cannot change that in place)" in (
        caplog.text
    )


def test_changing_the_shards_replaces_a_sharded_queue(
    services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    service = services.start(document(1, queue("s", "in_key_order", "sharded", shards=2)))
    old = the_queue(service, "s")
    with caplog.at_level(logging.INFO, "threadpool.service"):
        reload(services, service, document(1, queue("s", "in_key_order", "sharded", shards=8)))
    new = the_queue(service, "s")
    assert new is not old and new.num_shards == 8
    assert "main/s: replaced (shards changed; a queue cannot change that in place)" in caplog.text
    assert service.runtime.submit("main", "s", ("a", 1), key="a")
