"""The service's log format: one line per record, to stderr; repeated tracebacks limited.

    2024-05-01T12:00:00.123 INFO    threadpool.service [MainThread] reloaded config.yaml

Time (local, milliseconds), level, logger, thread, message. A traceback or a
lockdep report follows its line, indented by the handler's formatter as
Python prints it. ``set_level`` changes the root logger's level, so that a
reload changes what every logger (the handlers' own included) lets through.

A handler that fails on every item would write a traceback per item (about
500 bytes each: 155 KB for 300 failures). ``TracebackLimit`` lets through the
first ``BURST`` records with a traceback from each *site* (logger, message,
exception type and the line that raised) in each ``WINDOW`` seconds, and
counts the rest; ``flush()`` (called by the service's main loop, and at
shutdown with ``force``) logs one line per site saying how many were
suppressed, with the first suppressed record's message. Records without a
traceback are never held back. The failures themselves are all counted in
``threadpool_items_failed_total``.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from time import monotonic
from typing import TextIO

FORMAT = "%(asctime)s.%(msecs)03d %(levelname)-7s %(name)s [%(threadName)s] %(message)s"
DATE_FORMAT = "%Y-%m-%dT%H:%M:%S"
BURST = 5  # records with a traceback let through per site and window
WINDOW = 60.0  # seconds
MAX_SITES = 1000  # sites tracked at once; beyond, new sites share one budget

logger = logging.getLogger("threadpool.service")

Site = tuple[str, str, str, str, int]


@dataclass
class _Window:
    start: float
    example: str  # the first suppressed record's message
    passed: int = 0
    suppressed: int = 0


class TracebackLimit(logging.Filter):
    """See the module docstring. Thread-safe; ``clock`` is for tests."""

    def __init__(
        self, burst: int = BURST, window: float = WINDOW, clock: Callable[[], float] = monotonic
    ) -> None:
        super().__init__()
        self.burst = burst
        self.window = window
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[Site, _Window] = {}
        self._due: list[tuple[int, float, str]] = []  # (suppressed, seconds, example)

    def filter(self, record: logging.LogRecord) -> bool:
        exc_info = record.exc_info
        if not exc_info or exc_info[0] is None:
            return True
        site = _site(record)
        now = self._clock()
        with self._lock:
            if site not in self._windows and len(self._windows) >= MAX_SITES:
                site = ("", "", "", "", 0)  # the shared overflow budget
            w = self._windows.get(site)
            if w is None or now - w.start >= self.window:
                if w is not None and w.suppressed:
                    self._due.append((w.suppressed, now - w.start, w.example))
                w = self._windows[site] = _Window(now, "")
            if w.passed < self.burst:
                w.passed += 1
                return True
            if not w.suppressed:
                w.example = record.getMessage()
            w.suppressed += 1
            return False

    def flush(self, *, force: bool = False) -> int:
        """Log the counts of windows that are over (all of them with ``force``); returns
        how many records they held back."""
        now = self._clock()
        with self._lock:
            due, self._due = self._due, []
            for site, w in list(self._windows.items()):
                if force or now - w.start >= self.window:
                    if w.suppressed:
                        due.append((w.suppressed, now - w.start, w.example))
                    del self._windows[site]
        for count, seconds, example in due:
            logger.warning(
                "%d more records with a traceback like this one suppressed in %.0fs: %s",
                count,
                seconds,
                example,
            )
        return sum(count for count, _seconds, _example in due)


def _site(record: logging.LogRecord) -> Site:
    """Where a record with a traceback comes from: logger, message template, exception
    type and the innermost frame of its traceback."""
    assert record.exc_info is not None
    exc_type, _exc, tb = record.exc_info
    filename, line = "", 0
    while tb is not None:
        filename, line = tb.tb_frame.f_code.co_filename, tb.tb_lineno
        tb = tb.tb_next
    name = exc_type.__qualname__ if exc_type is not None else ""
    return (record.name, str(record.msg), name, filename, line)


def setup(
    level: str, stream: TextIO | None = None, limit: TracebackLimit | None = None
) -> logging.Handler:
    """Send every record at ``level`` or above to ``stream`` (default stderr), through
    ``limit`` when given."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT, DATE_FORMAT))
    if limit is not None:
        handler.addFilter(limit)
    root = logging.getLogger()
    root.addHandler(handler)
    set_level(level)
    logging.captureWarnings(True)
    return handler


def set_level(level: str) -> None:
    """``level`` is a name: debug, info, warning, error or critical."""
    logging.getLogger().setLevel(level.upper())
