# expect: clean
"""A job runner whose parts get their locks from shared code: a make_lock() helper,
and dataclasses with a ``field(default_factory=threading.Lock)``.

The job queue and the results store each get a lock from make_lock(); the worker
and the job-stats record are dataclasses with a lock field. Between them sits the
module's event log, with a lock of its own. The order is always the same:
queue -> log -> results, and worker -> log -> stats. Parts made by the same
helper, or by the same dataclass machinery, are still different parts, and nothing
here can deadlock.
"""

import threading
from collections import deque
from dataclasses import dataclass, field


def make_lock() -> threading.Lock:
    """The lock every component uses (one place to swap in another lock type)."""
    return threading.Lock()


_log_lock = threading.Lock()
_log: list[str] = []


class JobQueue:
    def __init__(self, jobs: list[int]) -> None:
        self._lock = make_lock()
        self._jobs = deque(jobs)

    def take(self) -> int | None:
        with self._lock:
            if not self._jobs:
                return None
            job = self._jobs.popleft()
            log_event(f"take {job}")
            return job


class Results:
    def __init__(self) -> None:
        self._lock = make_lock()
        self._values: dict[int, int] = {}

    def put(self, job: int, value: int) -> None:
        with self._lock:
            self._values[job] = value

    def count(self) -> int:
        with self._lock:
            return len(self._values)


@dataclass
class JobStats:
    done: int = 0
    failed: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def bump(self) -> None:
        with self.lock:
            self.done += 1


@dataclass
class Worker:
    name: str = ""
    busy: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


def log_event(text: str) -> None:
    with _log_lock:
        _log.append(text)


def log_summary(results: Results, stats: JobStats) -> str:
    with _log_lock:
        line = f"{results.count()} results, {len(_log)} events"
        stats.bump()
        _log.append(line)
        return line


def run(worker: Worker, queue: JobQueue, results: Results, stats: JobStats) -> None:
    while (job := queue.take()) is not None:
        with worker.lock:
            worker.busy = True
            log_event(f"{worker.name} runs {job}")
        results.put(job, job * job)
        with worker.lock:
            worker.busy = False
        stats.bump()


def main() -> None:
    queue, results, stats = JobQueue(list(range(200))), Results(), JobStats()
    workers = [Worker(f"w{i}") for i in range(4)]
    threads = [
        threading.Thread(target=run, args=(worker, queue, results, stats)) for worker in workers
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    print(log_summary(results, stats))
    assert results.count() == 200 and stats.done == 201, (results.count(), stats)


if __name__ == "__main__":
    main()
