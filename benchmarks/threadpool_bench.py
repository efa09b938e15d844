"""threadpool's performance contract (SPEC 4.5), measured side by side in one run.

1. No-op items queued by one producer thread through WorkQueueVal and through
   PointerWQ, 4 workers, until all are done, vs ThreadPoolExecutor(4).submit of
   the same no-op until all futures are done: target >= 5x items per second.
2. The same through BatchWorkQueue(batch_size=64): target >= 30x.
3. Heartbeat resets on (a HeartbeatMap) vs off (none), WorkQueueVal, at 1 and
   at 4 threads: target >= 0.9x.
4. For information: WorkQueueVal with histograms=True vs False; and WorkQueueVal
   whose workers queue on the pool lock at once when they find it taken (no
   backoff: the straightforward loop, which convoys) vs ThreadPoolExecutor.

Targets are with lockdep disabled; the same figures with lockdep enabled are
printed beside them. Every figure is a median over several rounds, and the
baseline of a ratio is measured in the same round as what it is compared
with, so that a noisy (shared) machine moves both.
Run: python benchmarks/threadpool_bench.py [--rounds N] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import lockdep
from threadpool import BatchWorkQueue, HeartbeatMap, PointerWQ, ThreadPool, WorkQueueVal
from threadpool.worker import Worker


def noop() -> None:
    pass


def noop_item(item: object, handle: object) -> None:
    pass


def tpe_rate(n: int, threads: int = 4) -> float:
    """Items/s of ThreadPoolExecutor(threads).submit(noop) until every future is done."""
    with ThreadPoolExecutor(threads) as ex:
        ex.submit(noop).result()  # workers started
        start = time.perf_counter()
        futures = [ex.submit(noop) for _ in range(n)]
        wait(futures)
        elapsed = time.perf_counter() - start
    return n / elapsed


def pool_rate(
    make_queue: Callable[[], Any], n: int, threads: int = 4, heartbeat: bool = False
) -> float:
    """Items/s of one producer queueing n no-op items, until the queue is drained."""
    hb = HeartbeatMap("bench") if heartbeat else None
    pool = ThreadPool("bench", threads, heartbeat_map=hb)
    q = make_queue()
    pool.add_work_queue(q)
    pool.start()
    try:
        q.queue(0)
        pool.drain(q)
        pool.wait_for_threads()
        put = q.queue
        start = time.perf_counter()
        for i in range(n):
            put(i)
        pool.drain(q)
        elapsed = time.perf_counter() - start
    finally:
        pool.stop()
    return n / elapsed


def val() -> WorkQueueVal:
    return WorkQueueVal("bench", process=noop_item)


def val_hist() -> WorkQueueVal:
    return WorkQueueVal("bench", process=noop_item, histograms=True)


def ptr() -> PointerWQ:
    return PointerWQ("bench", process=noop_item)


def batch() -> BatchWorkQueue:
    return BatchWorkQueue("bench", process=noop_item, batch_size=64)


def blocking_relock_rate(n: int) -> float:
    """pool_rate(val) with Worker._relock replaced by a plain blocking acquire."""
    designed = Worker._relock
    Worker._relock = lambda self: self.state.lock.lock()  # type: ignore[method-assign]
    try:
        return pool_rate(val, n)
    finally:
        Worker._relock = designed  # type: ignore[method-assign]


INFO = ">=0x"  # a row printed for information, with no target


class Row:
    def __init__(self, label: str, target: str) -> None:
        self.label = label
        self.target = target
        self.ratios: dict[bool, list[float]] = {False: [], True: []}
        self.rates: dict[bool, list[float]] = {False: [], True: []}

    def add(self, lockdep_on: bool, rate: float, base: float) -> None:
        self.rates[lockdep_on].append(rate)
        self.ratios[lockdep_on].append(rate / base)

    def line(self) -> str:
        off = statistics.median(self.ratios[False])
        on = statistics.median(self.ratios[True])
        rate = statistics.median(self.rates[False])
        target = "information" if self.target == INFO else f"target {self.target}"
        return (
            f"  {self.label:<58} {off:7.2f}x  ({target:>13})  "
            f"{rate:>10,.0f}/s   lockdep on: {on:6.2f}x"
        )

    def met(self) -> bool:
        op, value = self.target[:2], float(self.target[2:].rstrip("x"))
        off = statistics.median(self.ratios[False])
        return off >= value if op == ">=" else off <= value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="fewer items per round")
    args = parser.parse_args()
    scale = 0.2 if args.quick else 1.0
    n_tpe = int(50_000 * scale)
    n_item = int(300_000 * scale)
    n_batch = int(1_500_000 * scale)

    rows = {
        "val": Row("WorkQueueVal, 4 workers vs ThreadPoolExecutor", ">=5x"),
        "ptr": Row("PointerWQ, 4 workers vs ThreadPoolExecutor", ">=5x"),
        "batch": Row("BatchWorkQueue(64), 4 workers vs ThreadPoolExecutor", ">=30x"),
        "hb1": Row("heartbeat on vs off, 1 thread", ">=0.9x"),
        "hb4": Row("heartbeat on vs off, 4 threads", ">=0.9x"),
        "hist": Row("histograms on vs off, WorkQueueVal, 4 threads", INFO),
        "naive": Row("WorkQueueVal without relock backoff vs ThreadPoolExecutor", INFO),
    }
    tpe_rates: list[float] = []
    for r in range(args.rounds):
        for on in (False, True):
            lockdep.configure(enabled=on)
            base = tpe_rate(n_tpe)
            if not on:
                tpe_rates.append(base)
            rows["val"].add(on, pool_rate(val, n_item), base)
            rows["ptr"].add(on, pool_rate(ptr, n_item), base)
            rows["batch"].add(on, pool_rate(batch, n_batch), base)
            for threads, key in ((1, "hb1"), (4, "hb4")):
                # off, on, off, on, off, on, off: the cost is a few percent, the
                # noise of one run on a shared machine ten or more
                offs = [pool_rate(val, n_item, threads)]
                ons = []
                for _ in range(3):
                    ons.append(pool_rate(val, n_item, threads, heartbeat=True))
                    offs.append(pool_rate(val, n_item, threads))
                rows[key].add(on, statistics.mean(ons), statistics.mean(offs))
            plain = pool_rate(val, n_item)
            rows["hist"].add(on, pool_rate(val_hist, n_item), plain)
            rows["naive"].add(on, blocking_relock_rate(n_item), base)
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
    lockdep.configure(enabled=True)

    print(f"threadpool benchmarks: medians of {args.rounds} rounds, lockdep disabled")
    print(f"  ThreadPoolExecutor(4).submit(noop): {statistics.median(tpe_rates):,.0f} items/s")
    print(f"  {'ratio':<58} {'median':>8}  {'':>15}  {'items/s':>12}")
    for row in rows.values():
        print(row.line())
    missed = [row.label for row in rows.values() if not row.met()]
    if missed:
        print("targets missed: " + "; ".join(missed))
        return 1
    print("all targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
