"""A pool's executor in the service: a queue of kind ``calls``, reached by producers (and
the handlers they hand it to) with ``ctx.executor(pool, queue)``; its calls are the pool's
work like any item: counted, timed by the heartbeat, retired with the queue."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import CancelledError
from typing import Any

import pytest

from threadpool import Executor

from . import handlers
from .conftest import DEADLINE, HANDLERS, Services, doc, poll, request, write
from .test_bounded import document, metric, queue

CALLS = {"name": "calls", "kind": "calls"}


@pytest.fixture(autouse=True)
def fresh_results() -> Iterator[None]:
    handlers.RESULTS.clear()
    handlers.RESULTS_DONE.clear()
    yield


def test_a_producer_submits_through_the_pools_executor_and_gets_results(
    services: Services,
) -> None:
    d = document(2, CALLS)
    d["producers"] = [
        {
            "name": "caller",
            "factory": f"{HANDLERS}:Caller",
            "settings": {"pool": "main", "queue": "calls"},
        }
    ]
    service = services.start(d)
    assert handlers.RESULTS_DONE.wait(DEADLINE)
    assert [2**n for n in range(10)] == handlers.RESULTS
    assert metric(service, "threadpool_items_processed_total", "calls") == 10
    live = service.runtime.live("main")
    assert live is not None
    executor = service.runtime.executor("main", "calls")
    assert isinstance(executor, Executor) and executor.pool is live.pool


def test_a_hung_call_shows_on_health_like_any_hung_item(services: Services) -> None:
    service = services.start(document(1, {**CALLS, "timeout": 0.2}))
    release = threading.Event()
    future = service.runtime.executor("main", "calls").submit(release.wait, DEADLINE)
    try:
        poll(
            "/health 503 naming the worker",
            lambda: request(service.url, "/health")[::2] == (503, b"main thread 0\n"),
        )
    finally:
        release.set()
    assert future.result(timeout=DEADLINE) is True
    poll("/health 200 again", lambda: request(service.url, "/health")[0] == 200)


def test_a_calls_queue_is_bounded_and_timed_like_any_queue(services: Services) -> None:
    service = services.start(document(0, {**CALLS, "max_items": 1, "deadline": 30}))
    executor = service.runtime.executor("main", "calls")
    assert (executor.queue.max_items, executor.queue.deadline) == (1, 30)
    executor.submit(pow, 2, 2)
    with pytest.raises(Exception, match="is full"):
        executor.submit(pow, 2, 3)
    assert metric(service, "threadpool_items_rejected_total", "calls") == 1


def test_only_a_calls_queue_has_an_executor_and_only_it_refuses_items(
    services: Services,
) -> None:
    service = services.start(document(0, CALLS, queue("q")))
    with pytest.raises(LookupError, match="main/q is a value queue, not a queue of calls"):
        service.runtime.executor("main", "q")
    with pytest.raises(LookupError, match="no queue main/nosuch"):
        service.runtime.executor("main", "nosuch")
    with pytest.raises(TypeError, match=r"main/calls is a queue of calls: submit to it through"):
        service.runtime.submit("main", "calls", 1)


def test_calls_not_started_at_shutdown_are_cancelled_and_counted(services: Services) -> None:
    service = services.start(document(0, CALLS))  # no worker: the calls wait
    executor = service.runtime.executor("main", "calls")
    futures = [executor.submit(pow, 2, n) for n in range(3)]
    assert service.shutdown() == {"main/calls": 3}
    assert all(f.cancelled() for f in futures)
    with pytest.raises(RuntimeError, match="after shutdown"):
        executor.submit(pow, 2, 2)
    with pytest.raises(CancelledError):
        futures[0].result(timeout=0)


def test_a_reload_replacing_the_calls_queue_retires_its_executor(services: Services) -> None:
    service = services.start(document(1, CALLS))
    old = service.runtime.executor("main", "calls")
    assert old.submit(pow, 2, 5).result(timeout=DEADLINE) == 32
    write(services.tmp_path / "config.yaml", document(1, {**CALLS, "histograms": False}))
    assert service.reload("test")
    with pytest.raises(RuntimeError, match="after shutdown"):
        old.submit(pow, 2, 5)
    new = service.runtime.executor("main", "calls")
    assert new is not old and new.submit(pow, 2, 6).result(timeout=DEADLINE) == 64


def test_a_reload_changing_a_calls_queues_limits_keeps_its_executor(services: Services) -> None:
    service = services.start(document(1, CALLS))
    executor = service.runtime.executor("main", "calls")
    changed: dict[str, Any] = {**CALLS, "timeout": 5, "max_items": 10, "deadline": 20}
    write(services.tmp_path / "config.yaml", document(1, changed))
    assert service.reload("test")
    assert service.runtime.executor("main", "calls") is executor
    q = executor.queue
    assert (q.timeout, q.max_items, q.deadline) == (5, 10, 20)
    assert executor.submit(pow, 3, 2).result(timeout=DEADLINE) == 9


def test_a_calls_queue_takes_no_handler(services: Services) -> None:
    from threadpool.service.config import ConfigError

    with pytest.raises(
        ConfigError, match=r"queues\[0\]\.handler: applies only to queues of items, not calls"
    ):
        services.config(document(0, {**CALLS, "handler": f"{HANDLERS}:noop"}))
    bad = doc()
    del bad["pools"][0]["queues"][0]["handler"]
    with pytest.raises(ConfigError, match=r"queues\[0\]: missing required key 'handler'"):
        services.config(bad)
