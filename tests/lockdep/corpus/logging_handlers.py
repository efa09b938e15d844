# expect: clean
"""A service's logging setup, with several handler types, used from many threads:
console (StreamHandler), a rotating file, a memory buffer flushed to an error file,
a queue handler drained by a QueueListener thread, and a custom handler that
counts records per level for an audit summary.

The audit handler updates the shared counters under their lock while logging holds
its handler lock; a reporter thread holds the counters' lock while it logs the
summary to its own console logger. Handlers of different types are different
locks, and the order is always audit handler -> counters -> report console.
"""

import io
import logging
import logging.handlers
import os
import queue
import tempfile
import threading

_counts_lock = threading.Lock()
_counts: dict[str, int] = {}


class AuditHandler(logging.Handler):
    """Counts records per level."""

    def emit(self, record: logging.LogRecord) -> None:
        with _counts_lock:
            _counts[record.levelname] = _counts.get(record.levelname, 0) + 1


def configure(directory: str, console: io.StringIO) -> logging.handlers.QueueListener:
    formatter = logging.Formatter("%(asctime)s %(threadName)s %(levelname)s %(message)s")
    stream = logging.StreamHandler(console)
    rotating = logging.handlers.RotatingFileHandler(
        os.path.join(directory, "app.log"), maxBytes=20_000, backupCount=3
    )
    errors = logging.FileHandler(os.path.join(directory, "errors.log"))
    buffered = logging.handlers.MemoryHandler(capacity=50, flushLevel=logging.ERROR, target=errors)
    buffered.setLevel(logging.WARNING)
    records: queue.Queue[logging.LogRecord] = queue.Queue()
    listener = logging.handlers.QueueListener(records, stream, respect_handler_level=True)
    for handler in (stream, rotating, errors):
        handler.setFormatter(formatter)
    root = logging.getLogger()
    root.setLevel(logging.DEBUG)
    for handler in (logging.handlers.QueueHandler(records), rotating, buffered, AuditHandler()):
        root.addHandler(handler)
    report = logging.getLogger("app.report")
    report.propagate = False
    report.addHandler(logging.StreamHandler(console))
    listener.start()
    return listener


def worker(number: int) -> None:
    log = logging.getLogger(f"app.worker.{number}")
    for i in range(150):
        log.debug("step %d", i)
        if i % 10 == 0:
            log.info("progress %d/150", i)
        if i % 50 == 0:
            log.warning("slow step %d", i)
        if i == 100:
            try:
                raise ValueError("bad input")
            except ValueError:
                log.exception("step %d failed", i)


def reporter(stop: threading.Event) -> None:
    report = logging.getLogger("app.report")
    while not stop.wait(0.005):
        with _counts_lock:
            report.info("counts so far: %s", sorted(_counts.items()))


def main() -> None:
    console = io.StringIO()
    with tempfile.TemporaryDirectory() as directory:
        listener = configure(directory, console)
        stop = threading.Event()
        watcher = threading.Thread(target=reporter, args=(stop,), name="reporter")
        watcher.start()
        workers = [threading.Thread(target=worker, args=(n,), name=f"w{n}") for n in range(6)]
        for thread in workers:
            thread.start()
        for thread in workers:
            thread.join(timeout=60)
        stop.set()
        watcher.join(timeout=60)
        listener.stop()
        logging.shutdown()
        with open(os.path.join(directory, "errors.log")) as errors:
            failures = errors.read().count("failed")
    assert failures == 6, failures
    assert _counts["ERROR"] == 6 and _counts["DEBUG"] == 900, _counts
    print(sorted(_counts.items()), len(console.getvalue().splitlines()), "console lines")


if __name__ == "__main__":
    main()
