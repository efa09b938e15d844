"""Workload for benchmarks/as_completed_bench.py: prints the milliseconds that
``as_completed`` over N finished futures takes (N from argv, default 3,000),
the best of three calls on fresh futures."""

from __future__ import annotations

import sys
import time
from concurrent.futures import Future, as_completed


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    best = float("inf")
    for _ in range(3):
        futures: list[Future[None]] = [Future() for _ in range(n)]
        for future in futures:
            future.set_result(None)
        start = time.perf_counter()
        for _ in as_completed(futures):
            pass
        best = min(best, time.perf_counter() - start)
    print(f"{best * 1000:.3f}")


if __name__ == "__main__":
    main()
