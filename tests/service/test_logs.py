"""logs.py: one line per record - time, level, logger, thread, message."""

from __future__ import annotations

import io
import logging
import re

from threadpool.service import logs


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
