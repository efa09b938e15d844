"""logs.py: one line per record - time, level, logger, thread, message; repeated tracebacks
limited, with a count of those held back."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator

import pytest

from threadpool import ThreadPool, WorkQueueVal
from threadpool.service import logs

from .handlers import fail


def test_records_are_one_line_each_and_the_level_applies(root_level: None) -> None:
    stream = io.StringIO()
    handler = logs.setup("warning", stream)
    try:
        logging.getLogger("threadpool.test").info("not shown")
        logging.getLogger("threadpool.test").warning("shown %d", 1)
        logs.set_level("debug")
        logging.getLogger("other").debug("now shown")
    finally:
        logging.getLogger().removeHandler(handler)
        logging.captureWarnings(False)
    lines = stream.getvalue().splitlines()
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}"
    assert len(lines) == 2, lines
    assert re.fullmatch(stamp + r" WARNING threadpool\.test \[MainThread\] shown 1", lines[0])
    assert re.fullmatch(stamp + r" DEBUG   other \[MainThread\] now shown", lines[1])


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def failing(log: logging.Logger, what: str, exc: type[Exception] = ValueError) -> None:
    try:
        raise exc(what)
    except Exception:
        log.exception("process step failed on %s", what)


@pytest.fixture
def limited(root_level: None) -> Iterator[tuple[io.StringIO, logs.TracebackLimit, Clock]]:
    stream, clock = io.StringIO(), Clock()
    limit = logs.TracebackLimit(burst=5, window=60.0, clock=clock)
    handler = logs.setup("info", stream, limit)
    try:
        yield stream, limit, clock
    finally:
        logging.getLogger().removeHandler(handler)
        logging.captureWarnings(False)


def test_repeated_tracebacks_are_limited_and_the_rest_counted(
    limited: tuple[io.StringIO, logs.TracebackLimit, Clock],
) -> None:
    stream, limit, _clock = limited
    log = logging.getLogger("threadpool.test")
    for n in range(300):
        failing(log, f"item {n}")
    assert limit.flush() == 0  # the window is not over yet
    assert limit.flush(force=True) == 295
    text = stream.getvalue()
    assert text.count("Traceback (most recent call last)") == 5
    assert text.count("process step failed on item") == 5 + 1
    assert (
        "295 more records with a traceback like this one suppressed in 0s: "
        "process step failed on item 5" in text
    )


def test_each_failure_site_has_its_own_budget_and_plain_records_pass(
    limited: tuple[io.StringIO, logs.TracebackLimit, Clock],
) -> None:
    stream, limit, _clock = limited
    log = logging.getLogger("threadpool.test")
    for n in range(10):
        failing(log, f"value {n}", ValueError)
        failing(log, f"key {n}", KeyError)
        log.error("no traceback %d", n)
    text = stream.getvalue()
    assert text.count("Traceback (most recent call last)") == 10  # 5 + 5
    assert text.count("no traceback") == 10
    assert limit.flush(force=True) == 10


def test_a_new_window_lets_tracebacks_through_again(
    limited: tuple[io.StringIO, logs.TracebackLimit, Clock],
) -> None:
    stream, limit, clock = limited
    log = logging.getLogger("threadpool.test")
    for n in range(8):
        failing(log, f"item {n}")
    clock.now = 61.0
    assert limit.flush() == 3  # the first window is over: its count is logged
    for n in range(8):
        failing(log, f"later {n}")
    text = stream.getvalue()
    assert text.count("Traceback (most recent call last)") == 10
    assert "3 more records with a traceback like this one suppressed in 61s: " in text
    assert limit.flush(force=True) == 3


def test_a_failing_handler_logs_a_bounded_amount(
    limited: tuple[io.StringIO, logs.TracebackLimit, Clock],
) -> None:
    stream, limit, _clock = limited
    pool = ThreadPool("logs_tp", 2)
    q = WorkQueueVal("always_fails", process=fail)
    pool.add_work_queue(q)
    pool.start()
    try:
        for n in range(300):
            q.queue(n)
        assert pool.drain(q, timeout=30)
    finally:
        pool.stop()
    assert q.stats()["failed"] == 300
    assert limit.flush(force=True) == 295
    text = stream.getvalue()
    assert text.count("Traceback (most recent call last)") == 5
    assert len(text) < 20_000, len(text)  # 300 tracebacks were 155 KB
    assert "295 more records with a traceback like this one suppressed" in text
