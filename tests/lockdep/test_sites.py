"""Reports name the user's line: the stdlib's thin wrappers are skipped (SPEC 3.7)."""

from __future__ import annotations

import logging
import queue
import sys
import threading

import pytest

import lockdep

pytestmark = pytest.mark.usefixtures("installed")


def test_a_condition_taken_with_a_with_block_records_the_users_line() -> None:
    cond = threading.Condition()
    line = sys._getframe().f_lineno + 1
    with cond:
        (held,) = lockdep.held_locks()
    assert held.site.file == __file__ and held.site.line == line


def test_the_retake_after_wait_for_records_the_users_line() -> None:
    cond = threading.Condition()
    calls = []
    with cond:
        line = sys._getframe().f_lineno + 1
        cond.wait_for(lambda: calls.append(1) or len(calls) > 1, timeout=0.01)  # one wait
        (held,) = lockdep.held_locks()
    assert held.site.file == __file__ and held.site.line == line


def test_a_handler_lock_records_the_logging_code_not_handler_acquire() -> None:
    seen: list[lockdep.HeldLock] = []

    class Probe(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.extend(lockdep.held_locks())

    logger = logging.getLogger("lockdep-test-sites")
    handler = Probe()
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("hello")
    finally:
        logger.removeHandler(handler)
        handler.close()
    (entry,) = [h for h in seen if h.lock is handler.lock]
    assert entry.site.function != "acquire"  # Handler.acquire is skipped


def test_a_queue_operation_records_the_users_line() -> None:
    q: queue.Queue[int] = queue.Queue()
    outer = threading.Lock()
    line = sys._getframe().f_lineno + 2
    with outer:
        q.put(1)
    edges = [e for e in lockdep.graph()["edges"] if e["from"] == outer.name]  # type: ignore[attr-defined]
    assert edges and all(f"{__file__}:{line} in " in e["to_site"] for e in edges)
