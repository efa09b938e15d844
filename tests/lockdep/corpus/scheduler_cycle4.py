# expect: order
"""A job scheduler: a job table, a worker roster, a result store and metrics,
each behind its own lock, each worked on by its own thread.

Every thread holds one lock and takes the next: submit (jobs -> workers),
dispatch (workers -> results), collect (results -> metrics). The bug: the metrics
reporter reads the job table's depth while holding the metrics lock, which closes
a cycle of four locks across four threads.
"""

import threading
from dataclasses import dataclass, field


@dataclass
class Job:
    id: int
    payload: int
    worker: str | None = None
    result: int | None = None


@dataclass
class Scheduler:
    jobs: dict[int, Job] = field(default_factory=dict)
    idle_workers: list[str] = field(default_factory=lambda: ["w1", "w2"])
    results: dict[int, int] = field(default_factory=dict)
    metrics: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.jobs_lock = threading.Lock()
        self.workers_lock = threading.Lock()
        self.results_lock = threading.Lock()
        self.metrics_lock = threading.Lock()

    def submit(self, jobs: list[Job]) -> None:
        with self.jobs_lock:  # site
            for job in jobs:
                self.jobs[job.id] = job
                with self.workers_lock:  # site
                    if self.idle_workers:
                        job.worker = self.idle_workers.pop()

    def dispatch(self) -> None:
        with self.workers_lock:  # site
            with self.results_lock:  # site
                for job in self.jobs.values():
                    if job.worker is not None and job.id not in self.results:
                        self.results[job.id] = job.payload * 2
                        self.idle_workers.append(job.worker)

    def collect(self) -> None:
        with self.results_lock:  # site
            done = len(self.results)
            with self.metrics_lock:  # site
                self.metrics["done"] = done

    def report(self) -> str:
        with self.metrics_lock:  # site
            with self.jobs_lock:  # site
                self.metrics["queued"] = len(self.jobs) - self.metrics.get("done", 0)
            return ", ".join(f"{k}={v}" for k, v in sorted(self.metrics.items()))


def main() -> None:
    scheduler = Scheduler()
    out: list[str] = []
    steps = [
        lambda: scheduler.submit([Job(i, i) for i in range(3)]),
        scheduler.dispatch,
        scheduler.collect,
        lambda: out.append(scheduler.report()),
    ]
    # One thread at a time: the cycle is there, the deadlock is not, in this run.
    for step in steps:
        thread = threading.Thread(target=step)
        thread.start()
        thread.join(timeout=30)
    assert out == ["done=2, queued=1"], out
    print(out[0])


if __name__ == "__main__":
    main()
