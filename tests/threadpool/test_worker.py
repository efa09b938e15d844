"""The worker: its OS thread name, and how it takes the pool lock back."""

from __future__ import annotations

import threading

from hypothesis import given
from hypothesis import strategies as st

from threadpool import _osthread
from threadpool.worker import BACKOFF, Worker, os_name_for

from .conftest import Harness, join


@given(st.text(min_size=1, max_size=40), st.integers(min_value=0, max_value=999))
def test_worker_os_names_end_with_the_index(name: str, index: int) -> None:
    os_name = os_name_for(name, index)
    assert len(os_name.encode()) <= _osthread.NAME_LIMIT
    assert os_name.endswith(f"-{index}")


def relock_in_thread(worker: Worker) -> tuple[threading.Thread, threading.Event]:
    took = threading.Event()

    def run() -> None:
        worker._relock()
        took.set()
        worker.state.lock.unlock()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, took


def test_relock_takes_the_lock_once_its_holder_lets_go(tp: Harness) -> None:
    pool = tp.pool("relock", 0)
    worker = Worker(pool._state, 0)
    pool._state.lock.lock()
    thread, took = relock_in_thread(worker)
    assert not took.wait(sum(BACKOFF) * 2), "took a lock that was held"
    pool._state.lock.unlock()  # the backoff is over by now: it queued on the lock
    join(thread)
    assert took.is_set()


def test_relock_of_a_free_lock(tp: Harness) -> None:
    pool = tp.pool("relock", 0)
    thread, took = relock_in_thread(Worker(pool._state, 0))
    join(thread)
    assert took.is_set() and not pool._state.lock.is_locked()
