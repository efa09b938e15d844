"""Cost per acquisition does not grow with the locks a thread holds (SPEC 3.8).

``concurrent.futures.as_completed`` over 3,000 futures holds every future's
lock at once (3,000 instances of one class), and the first time round each new
pair is a new edge between instances. Two measures, several rounds each,
medians of per-round ratios:

1. in one process, interleaved: futures made before ``lockdep.install()``
   (untracked locks) against futures made after it (tracked), so that both
   are timed next to each other whatever the machine is doing;
2. as a whole program: ``python workload`` against
   ``python -m lockdep run workload`` (the workload times its own
   ``as_completed`` calls, so interpreter start-up is left out).

Target: <= 5x. Also printed: 6,000 futures against 3,000 under lockdep (a cost
flat in the number held doubles, ~2x).

Run: python benchmarks/as_completed_bench.py [--rounds N] [--futures N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import Future, as_completed
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import lockdep  # noqa: E402

WORKLOAD = ROOT / "benchmarks" / "workloads" / "as_completed.py"
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def finished_futures(n: int) -> list[Future[None]]:
    futures: list[Future[None]] = [Future() for _ in range(n)]
    for future in futures:
        future.set_result(None)
    return futures


def time_as_completed(futures: list[Future[None]]) -> float:
    start = time.perf_counter()
    for _ in as_completed(futures):
        pass
    return time.perf_counter() - start


def in_process(n: int, rounds: int) -> tuple[float, float, float, float]:
    """Median ms untracked, tracked, their ratio; and tracked 2n / tracked n."""
    plain, tracked, ratios, growth = [], [], [], []
    for _ in range(rounds):
        lockdep.uninstall()
        untracked = finished_futures(n)
        lockdep.install()
        fresh = finished_futures(n)  # new locks: new edges between instances
        double = finished_futures(2 * n)
        p = time_as_completed(untracked)
        t = time_as_completed(fresh)
        t2 = time_as_completed(double)
        plain.append(p)
        tracked.append(t)
        ratios.append(t / p)
        growth.append(t2 / t)
    lockdep.uninstall()
    return (
        statistics.median(plain) * 1e3,
        statistics.median(tracked) * 1e3,
        statistics.median(ratios),
        statistics.median(growth),
    )


def program(args: list[str], n: int) -> float:
    out = subprocess.run(
        [*args, str(WORKLOAD), str(n)], check=True, capture_output=True, text=True, env=ENV
    ).stdout
    return float(out.split()[0])


def whole_program(n: int, rounds: int) -> tuple[float, float, float]:
    plain_args = [sys.executable]
    tracked_args = [sys.executable, "-m", "lockdep", "run"]
    program(plain_args, n)  # warm: caches bytecode
    program(tracked_args, n)
    plain, tracked, ratios = [], [], []
    for _ in range(rounds):
        p = program(plain_args, n)
        t = program(tracked_args, n)
        plain.append(p)
        tracked.append(t)
        ratios.append(t / p)
    return statistics.median(plain), statistics.median(tracked), statistics.median(ratios)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--futures", type=int, default=3000)
    args = parser.parse_args()
    n = args.futures
    lockdep.configure(on_violation="raise")
    print(f"python {sys.version.split()[0]}, {args.rounds} rounds, {n:,} finished futures")
    plain, tracked, ratio, growth = in_process(n, args.rounds)
    print(
        f"as_completed, in process  : untracked {plain:6.1f} ms, tracked {tracked:6.1f} ms, "
        f"ratio {ratio:.2f}x (target <= 5x)"
    )
    print(f"  {2 * n:,} futures against {n:,}, tracked: {growth:.2f}x (flat cost: ~2x)")
    plain_p, tracked_p, ratio_p = whole_program(n, args.rounds)
    print(
        f"as_completed, lockdep run : plain     {plain_p:6.1f} ms, run     {tracked_p:6.1f} ms, "
        f"ratio {ratio_p:.2f}x (target <= 5x)"
    )
    ok = ratio <= 5 and ratio_p <= 5
    print("all targets met" if ok else "a target is missed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
