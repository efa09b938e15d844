"""Elastic pools in the service: the pool sizes itself, the service passes its limits
(at start and, live, on reload); the retired sampler's key still loads, with a warning."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from threadpool import ThreadPool

from .conftest import DEADLINE, HANDLERS, Services, doc, poll, write
from .handlers import Gate


def elastic(low: int, high: int, idle: float, handler: str = "hold") -> dict[str, Any]:
    d = doc()
    pool = d["pools"][0]
    del pool["threads"]
    pool.update(min_threads=low, max_threads=high, idle_timeout=idle)
    pool["queues"][0]["handler"] = f"{HANDLERS}:{handler}"
    return d


def fixed(threads: int, handler: str = "hold") -> dict[str, Any]:
    d = doc()
    d["pools"][0]["threads"] = threads
    d["pools"][0]["queues"][0]["handler"] = f"{HANDLERS}:{handler}"
    return d


def the_pool(services: Services) -> ThreadPool:
    (service,) = services.started
    live = service.runtime.live("main")
    assert live is not None
    return live.pool


def sizing(pool: ThreadPool) -> tuple[bool, int | None, int | None, float]:
    return pool.elastic, pool.min_threads, pool.max_threads, pool.idle_timeout


def reload(services: Services, document: dict[str, Any]) -> None:
    (service,) = services.started
    write(services.tmp_path / "config.yaml", document)
    assert service.reload("test")


def test_the_service_passes_the_limits_to_the_pool(services: Services) -> None:
    services.start(elastic(1, 3, 5))
    pool = the_pool(services)
    assert sizing(pool) == (True, 1, 3, 5.0)
    assert pool.num_threads == 1 and pool.wait_for_threads(1, timeout=DEADLINE)


def test_a_burst_grows_the_pool_to_max_threads_and_no_further(services: Services) -> None:
    service = services.start(elastic(1, 3, 30))
    pool = the_pool(services)
    gates = [Gate.new() for _ in range(5)]
    try:
        for g in gates:
            assert service.runtime.submit("main", "ticks", g)
        # Three at once with one thread to start with: the pool grew by itself.
        assert all(g.started.wait(DEADLINE) for g in gates[:3])
        assert pool.stats()["threads_target"] == 3
        assert not any(g.started.is_set() for g in gates[3:])  # no fourth thread
    finally:
        for g in gates:
            g.go.set()
    assert pool.drain(timeout=DEADLINE)


def test_idle_threads_above_the_minimum_are_given_back(services: Services) -> None:
    service = services.start(elastic(1, 3, 0.1))
    pool = the_pool(services)
    gates = [Gate.new() for _ in range(3)]
    try:
        for g in gates:
            assert service.runtime.submit("main", "ticks", g)
        assert all(g.started.wait(DEADLINE) for g in gates)
    finally:
        for g in gates:
            g.go.set()
    poll("the pool back at its minimum", lambda: pool.stats()["threads"] == 1)
    assert pool.num_threads == 1


def test_a_reload_changes_the_limits_of_the_running_pool(services: Services) -> None:
    services.start(elastic(1, 3, 5))
    pool = the_pool(services)
    reload(services, elastic(2, 6, 7))
    assert the_pool(services) is pool  # changed in place, not replaced
    assert sizing(pool) == (True, 2, 6, 7.0)
    assert pool.wait_for_threads(2, timeout=DEADLINE)  # brought up to the new minimum
    reload(services, elastic(1, 1, 7))
    assert sizing(pool) == (True, 1, 1, 7.0)
    assert pool.wait_for_threads(1, timeout=DEADLINE)  # down to the new maximum


def test_a_reload_switches_a_pool_between_fixed_and_elastic(services: Services) -> None:
    services.start(fixed(2))
    pool = the_pool(services)
    assert not pool.elastic and pool.wait_for_threads(2, timeout=DEADLINE)
    reload(services, elastic(0, 4, 3))
    assert the_pool(services) is pool and sizing(pool) == (True, 0, 4, 3.0)
    reload(services, fixed(3))
    assert the_pool(services) is pool and not pool.elastic
    assert pool.wait_for_threads(3, timeout=DEADLINE)


def test_an_unchanged_sizing_is_not_set_again(
    services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    services.start(elastic(1, 3, 5, handler="noop"))
    with caplog.at_level(logging.INFO, "threadpool"):
        reload(services, elastic(1, 3, 5, handler="release"))  # a queue change only
    assert "elastic, 1 to 3 threads" not in caplog.text


def test_the_retired_scale_interval_loads_with_a_warning_at_reload(
    services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    services.start(elastic(1, 3, 5))
    old = elastic(1, 2, 5)
    old["service"]["scale_interval"] = 0.5  # what files written for the sampler have
    with caplog.at_level(logging.WARNING, "threadpool.service"):
        reload(services, old)
    assert sizing(the_pool(services)) == (True, 1, 2, 5.0)
    assert (
        "config.yaml: service.scale_interval: no longer used, ignored: elastic pools size "
        "themselves (min_threads, max_threads, idle_timeout of the pool); remove it"
    ) in caplog.text
