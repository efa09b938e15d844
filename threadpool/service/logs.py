"""The service's log format: one line per record, to stderr.

    2024-05-01T12:00:00.123 INFO    threadpool.service [MainThread] reloaded config.yaml

Time (local, milliseconds), level, logger, thread, message. A traceback or a
lockdep report follows its line, indented by the handler's formatter as
Python prints it. ``set_level`` changes the root logger's level, so that a
reload changes what every logger (the handlers' own included) lets through.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

FORMAT = "%(asctime)s.%(msecs)03d %(levelname)-7s %(name)s [%(threadName)s] %(message)s"
DATE_FORMAT = "%Y-%m-%dT%H:%M:%S"


def setup(level: str, stream: TextIO | None = None) -> logging.Handler:
    """Send every record at ``level`` or above to ``stream`` (default stderr)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT, DATE_FORMAT))
    root = logging.getLogger()
    root.addHandler(handler)
    set_level(level)
    logging.captureWarnings(True)
    return handler


def set_level(level: str) -> None:
    """``level`` is a name: debug, info, warning, error or critical."""
    logging.getLogger().setLevel(level.upper())
