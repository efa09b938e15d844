"""The free-threaded switch: where the GIL is off (or the switch says so) the hand-off
from queue() to the workers takes the pool lock instead of leaning on the GIL."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

import lockdep
from threadpool import BatchWorkQueue, PointerWQ, ThreadPool, WorkQueue, WorkQueueVal, freethreading

from .conftest import JOIN, Harness


@pytest.fixture
def default_paths() -> Iterator[None]:
    freethreading.use_locked_paths(None)
    yield
    freethreading.use_locked_paths(None)


def test_the_default_follows_the_interpreter(default_paths: None) -> None:
    gil = getattr(sys, "_is_gil_enabled", lambda: True)()
    assert freethreading.gil_enabled() == gil
    assert freethreading.locked_paths() == (not gil)
    assert ThreadPool("d", 1).locked_paths == (not gil)


def test_a_pool_keeps_the_choice_it_was_made_with(default_paths: None) -> None:
    freethreading.use_locked_paths(True)
    locked = ThreadPool("locked", 1)
    freethreading.use_locked_paths(None)
    assert locked.locked_paths
    assert locked.stats()["locked_paths"] is True


def test_the_switch_refuses_anything_but_a_bool_or_none(default_paths: None) -> None:
    with pytest.raises(TypeError, match="True, False or None"):
        freethreading.use_locked_paths(1)  # type: ignore[arg-type]


def edges_into(name: str) -> set[str]:
    return {e["from"] for e in lockdep.graph()["edges"] if e["to"] == name}


@pytest.mark.parametrize("make", [WorkQueueVal, WorkQueue, BatchWorkQueue, PointerWQ])
def test_queue_takes_the_pool_lock_on_the_locked_paths_only(
    tp: Harness, paths: str, make: type
) -> None:
    # lockdep records an edge from a lock held around queue() to every lock queue() takes.
    pool = tp.pool(f"ft_{paths}_{make.__name__}", 1)
    q = make("q", process=lambda item, handle: None)
    pool.add_work_queue(q)  # not started: no idle worker to wake, so no lock for that
    outer = lockdep.Mutex(f"producer_{paths}_{make.__name__}")
    with outer:
        q.queue(1)
    took = outer.name in edges_into(f"ThreadPool::{pool.name}")
    assert took == (paths == "locked")
    pool.start()
    assert pool.drain(timeout=JOIN)
    assert q.stats()["processed"] == 1
