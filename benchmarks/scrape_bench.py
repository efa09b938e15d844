"""The cost of a scrape: GET /metrics from the service's listener, as Prometheus does it.

Setup: 10 pools x 5 queues (histograms on, every queue with items processed, so every
histogram has data), one heartbeat map, and 1,000 lockdep lock classes with
statistics on (each taken, so each has a record; the top 50 by wait time get
series). Each round times one whole HTTP request (connect, collect, encode,
transfer) on 127.0.0.1. Target: median under 50 ms.
Run: python benchmarks/scrape_bench.py [--rounds N]
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import lockdep
from threadpool import BatchWorkQueue, HeartbeatMap, PointerWQ, ThreadPool, WorkQueue, WorkQueueVal
from threadpool.service.httpd import HTTPService
from threadpool.service.metrics import LockdepCollector, PoolCollector, registry

POOLS, QUEUES, CLASSES, TARGET_MS = 10, 5, 1000, 50.0


def noop(item: object, handle: object) -> None:
    pass


def build() -> tuple[list[ThreadPool], HeartbeatMap]:
    hb = HeartbeatMap("bench")
    pools = []
    kinds = (WorkQueueVal, WorkQueue, PointerWQ, WorkQueueVal, BatchWorkQueue)
    for p in range(POOLS):
        pool = ThreadPool(f"pool{p}", 2, heartbeat_map=hb)
        queues = [kind(f"queue{q}", noop, histograms=True) for q, kind in enumerate(kinds)]
        for q in queues:
            pool.add_work_queue(q)
        pool.start()
        for i in range(200):
            for q in queues:
                q.queue(i + 1)  # not None: reference queues refuse None
        pools.append(pool)
    for pool in pools:
        pool.drain()
    hb.is_healthy()
    return pools, hb


def make_classes() -> None:
    mutexes = [lockdep.Mutex(f"bench_class_{i:04d}") for i in range(CLASSES)]
    for a, b in itertools.pairwise(mutexes):
        with a, b:  # every class taken, and a chain of edges
            pass


def scrape(host: str, port: int) -> tuple[float, int]:
    start = time.perf_counter()
    conn = http.client.HTTPConnection(host, port, timeout=30)
    conn.request("GET", "/metrics")
    response = conn.getresponse()
    body = response.read()
    conn.close()
    elapsed = time.perf_counter() - start
    assert response.status == 200, response.status
    return elapsed, len(body)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21)
    args = parser.parse_args()

    lockdep.configure(stats=True, on_violation="log")
    pools, hb = build()
    make_classes()
    stats = lockdep.stats()
    reg = registry(
        PoolCollector(lambda: pools, hb),
        LockdepCollector(lambda: 50),
    )
    server = HTTPService("127.0.0.1", 0, reg, hb.get_unhealthy_worker_names)
    server.start()
    host, port = server.address
    try:
        scrape(host, port)  # warm up
        rounds = [scrape(host, port) for _ in range(args.rounds)]
    finally:
        server.close()
        for pool in pools:
            pool.stop()
    times = sorted(ms * 1000 for ms, _ in rounds)
    median = statistics.median(times)
    size = rounds[-1][1]
    lines = generate_lines(reg)
    print(
        f"scrape of /metrics: {POOLS} pools x {QUEUES} queues (histograms on), "
        f"{stats['classes']} lockdep classes (stats on, top 50 exported)"
    )
    print(f"  exposition: {size} bytes, {lines} samples")
    print(
        f"  {args.rounds} rounds: median {median:.1f} ms, min {times[0]:.1f} ms, "
        f"max {times[-1]:.1f} ms  (target: median < {TARGET_MS:.0f} ms) "
        f"{'OK' if median < TARGET_MS else 'MISSED'}"
    )
    return 0 if median < TARGET_MS else 1


def generate_lines(reg: object) -> int:
    from prometheus_client import generate_latest

    text = generate_latest(reg).decode()  # type: ignore[arg-type]
    return sum(1 for line in text.splitlines() if line and not line.startswith("#"))


if __name__ == "__main__":
    sys.exit(main())
