"""The default workload: a scrubber that keeps checksumming the files under a directory.

It is what the shipped ``config.yaml`` runs, so that a fresh service shows
real numbers, and an example of a producer with handlers of each kind:

* ``Scrubber`` (the producer) walks the directory, pass after pass, and queues
  each small file (``small_file_limit`` bytes or less) to a batch queue and
  each large file, in ``chunk_size`` chunks, to a pointer queue; it keeps each
  queue under ``max_queued`` items rather than loading a whole tree at once;
* ``hash_files`` (a batch of small files) and ``hash_chunk`` (one chunk) read
  and hash on the workers (SHA-256; hashlib releases the GIL on large buffers,
  so chunks hash in parallel) and queue a result to the results queue;
* ``record`` (the finish step of the results value queue, run under the pool
  lock, one at a time) puts chunks back together and compares each file's
  digest with the previous pass's: a file whose content changed between
  passes is reported. ``settle`` is that queue's process step (nothing to do).

After each pass the producer logs a line (files, bytes, rate, changed,
unreadable), then waits ``pause`` seconds. Settings, all optional:
``directory`` (relative to the configuration file; default its directory),
``exclude`` (directory names not to enter), ``pool``, ``small_queue``,
``large_queue``, ``results_queue`` (where the queues are), ``small_file_limit``,
``chunk_size``, ``max_queued``, ``pause``, ``pass_timeout`` (seconds after which
an unfinished pass is given up and logged).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from time import monotonic
from typing import Any

from threadpool import TPHandle

from .producers import ProducerContext

logger = logging.getLogger("threadpool.scrubber")

DEFAULTS: dict[str, Any] = {
    "directory": ".",
    "exclude": [
        ".venv",
        "__pycache__",
        ".mypy_cache",
        ".ruff_cache",
        ".pytest_cache",
        ".hypothesis",
    ],
    "pool": "scrub",
    "small_queue": "small",
    "large_queue": "large",
    "results_queue": "results",
    "small_file_limit": 64 * 1024,
    "chunk_size": 1024 * 1024,
    "max_queued": 256,
    "pause": 5.0,
    "pass_timeout": 600.0,
}


@dataclass
class Scan:
    """One pass. Its counters change only in ``record`` steps (under the pool lock)."""

    number: int
    results: Callable[[Any], bool]  # queues a result to the results queue
    previous: dict[str, str]  # digests of the last pass, updated as files are recorded
    started: float = field(default_factory=monotonic)
    expected: int | None = None  # files queued; known once the walk is over
    recorded: int = 0
    bytes: int = 0
    changed: list[str] = field(default_factory=list)
    unreadable: int = 0
    done: threading.Event = field(default_factory=threading.Event)

    def record(self, path: str, size: int, digest: str | None) -> None:
        self.recorded += 1
        self.bytes += size
        if digest is None:
            self.unreadable += 1
        else:
            old = self.previous.get(path)
            if old is not None and old != digest:
                self.changed.append(path)
            self.previous[path] = digest
        self.check_done()

    def check_done(self) -> None:
        if self.expected is not None and self.recorded >= self.expected:
            self.done.set()


@dataclass
class FileJob:
    scan: Scan
    path: str
    size: int


@dataclass
class LargeFile:
    scan: Scan
    path: str
    size: int
    chunks: list[str | None]
    failed: bool = False
    left: int = 0


@dataclass
class ChunkJob:
    file: LargeFile
    index: int
    offset: int
    length: int


@dataclass
class Result:
    """A file's digest (``file`` None) or a chunk's (``file`` its LargeFile)."""

    scan: Scan
    path: str
    size: int
    digest: str | None
    file: LargeFile | None = None
    index: int = 0


def _hash(path: str, offset: int = 0, length: int = -1) -> str | None:
    try:
        with open(path, "rb") as f:
            if offset:
                f.seek(offset)
            return hashlib.sha256(f.read(length)).hexdigest()
    except OSError:
        return None


def _send(result: Result) -> None:
    if not result.scan.results(result):
        raise RuntimeError(f"no results queue for {result.path}; the pass will not finish")


def hash_files(jobs: list[FileJob], handle: TPHandle) -> None:
    """Process step of the small-file batch queue."""
    for job in jobs:
        handle.reset_tp_timeout()
        _send(Result(job.scan, job.path, job.size, _hash(job.path)))


def hash_chunk(job: ChunkJob, handle: TPHandle) -> None:
    """Process step of the large-file pointer queue: one chunk."""
    f = job.file
    digest = _hash(f.path, job.offset, job.length)
    _send(Result(f.scan, f.path, job.length, digest, f, job.index))


def settle(result: Result, handle: TPHandle) -> None:
    """Process step of the results queue: the work is in ``record``."""


def record(result: Result) -> None:
    """Finish step of the results queue (pool lock held): tally one result."""
    f = result.file
    if f is None:
        result.scan.record(result.path, result.size, result.digest)
        return
    f.chunks[result.index] = result.digest
    f.failed = f.failed or result.digest is None
    f.left -= 1
    if f.left == 0:
        digest = None
        if not f.failed:
            digest = hashlib.sha256("".join(c or "" for c in f.chunks).encode()).hexdigest()
        result.scan.record(f.path, f.size, digest)


class Scrubber:
    """The producer; ``Scrubber(settings, base_dir=...)`` checks the settings
    (ValueError listing every problem) and ``run(ctx)`` scrubs until stopped."""

    def __init__(self, settings: Mapping[str, Any], *, base_dir: Path) -> None:
        problems = [f"{key}: unknown setting" for key in settings if key not in DEFAULTS]
        s = {**DEFAULTS, **settings}
        for key in ("pool", "small_queue", "large_queue", "results_queue", "directory"):
            if not isinstance(s[key], str) or not s[key]:
                problems.append(f"{key}: must be a non-empty string, got {s[key]!r}")
        if not isinstance(s["exclude"], list) or not all(isinstance(x, str) for x in s["exclude"]):
            problems.append(f"exclude: must be a list of directory names, got {s['exclude']!r}")
        for key, low in (("small_file_limit", 0), ("chunk_size", 4096), ("max_queued", 1)):
            value = s[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                problems.append(f"{key}: must be an integer >= {low}, got {value!r}")
        for key in ("pause", "pass_timeout"):
            value = s[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                problems.append(f"{key}: must be a number of seconds >= 0, got {value!r}")
        if not problems:
            directory = base_dir / s["directory"]
            if not directory.is_dir():
                problems.append(f"directory: {str(directory)!r} is not a directory")
        if problems:
            raise ValueError("\n".join(problems))
        self.directory = str((base_dir / s["directory"]).resolve())
        self.exclude = frozenset(s["exclude"])
        self.pool: str = s["pool"]
        self.queues = (s["small_queue"], s["large_queue"], s["results_queue"])
        self.small_file_limit: int = s["small_file_limit"]
        self.chunk_size: int = s["chunk_size"]
        self.max_queued: int = s["max_queued"]
        self.pause = float(s["pause"])
        self.pass_timeout = float(s["pass_timeout"])
        self._digests: dict[str, str] = {}  # only record() steps touch it

    def __repr__(self) -> str:
        return f"<Scrubber of {self.directory!r}>"

    def run(self, ctx: ProducerContext) -> None:
        number = 0
        while not ctx.stopping:
            number += 1
            self._scan(ctx, number)
            if ctx.wait(self.pause):
                return

    def _files(self) -> Iterator[tuple[str, int]]:
        for top, dirs, files in os.walk(self.directory):
            dirs[:] = sorted(d for d in dirs if d not in self.exclude)
            for name in sorted(files):
                path = os.path.join(top, name)
                try:
                    st = os.lstat(path)
                except OSError:
                    continue
                if os.path.isfile(path) and not os.path.islink(path):
                    yield path, st.st_size

    def _scan(self, ctx: ProducerContext, number: int) -> None:
        small, large, results = self.queues
        scan = Scan(number, lambda r: ctx.submit(self.pool, results, r), self._digests)
        queued = skipped = 0
        for path, size in self._files():
            if ctx.stopping:
                return
            if not self._room(ctx, small if size <= self.small_file_limit else large):
                return
            if size <= self.small_file_limit:
                ok = ctx.submit(self.pool, small, FileJob(scan, path, size))
            else:
                ok = self._queue_chunks(ctx, scan, path, size)
            queued += ok
            skipped += not ok
        scan.expected = queued
        scan.check_done()
        end = monotonic() + self.pass_timeout
        while not scan.done.wait(0.2):
            if ctx.stopping:
                return
            if monotonic() > end:
                logger.error(
                    "scrub pass %d of %s: gave up after %gs with %d of %d files done",
                    number,
                    self.directory,
                    self.pass_timeout,
                    scan.recorded,
                    queued,
                )
                return
        seconds = max(monotonic() - scan.started, 1e-9)
        mib = scan.bytes / 2**20
        logger.info(
            "scrub pass %d of %s: %d files, %.1f MiB in %.2fs (%.1f MiB/s); %d changed%s, "
            "%d unreadable, %d not queued",
            number,
            self.directory,
            scan.recorded,
            mib,
            seconds,
            mib / seconds,
            len(scan.changed),
            f" ({', '.join(scan.changed[:3])}...)" if scan.changed else "",
            scan.unreadable,
            skipped,
        )

    def _queue_chunks(self, ctx: ProducerContext, scan: Scan, path: str, size: int) -> bool:
        _small, large, _results = self.queues
        count = -(-size // self.chunk_size)
        f = LargeFile(scan, path, size, [None] * count, left=count)
        for index in range(count):
            offset = index * self.chunk_size
            job = ChunkJob(f, index, offset, min(self.chunk_size, size - offset))
            if not ctx.submit(self.pool, large, job):
                # The chunks already queued still report; this file just never completes.
                return False
        return True

    def _room(self, ctx: ProducerContext, queue: str) -> bool:
        """Wait while ``queue`` holds ``max_queued`` items or more; False if stopping."""
        while True:
            n = ctx.queued(self.pool, queue)
            if n is None or n < self.max_queued:
                return True
            if ctx.wait(0.05):
                return False
