"""What install() costs a program that never nests locks (issue: "not noticeably slower").

Runs benchmarks/workloads/no_nesting.py as ``python workload`` and as
``python -m lockdep run workload``, alternating, several rounds; prints median
wall times and their ratio, for start-up alone (imports) and for the workload.
Start-up includes importing lockdep itself, which a program under the runner
always pays.

Run: python benchmarks/install_overhead.py [--rounds N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORKLOAD = ROOT / "benchmarks" / "workloads" / "no_nesting.py"


# Programs run with their bytecode cached, as they would be installed: an
# environment that forbids writing .pyc files would charge lockdep (not the
# pre-compiled standard library) with compiling itself at every start.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def wall(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(args, check=True, cwd=ROOT, stdout=subprocess.DEVNULL, env=ENV)
    return time.perf_counter() - start


def compare(extra: list[str], rounds: int) -> tuple[float, float, float]:
    plain_args = [sys.executable, str(WORKLOAD), *extra]
    tracked_args = [sys.executable, "-m", "lockdep", "run", str(WORKLOAD), *extra]
    plain, tracked, ratios = [], [], []
    wall(plain_args)  # warm: caches bytecode
    wall(tracked_args)
    for _ in range(rounds):
        p = wall(plain_args)
        t = wall(tracked_args)
        plain.append(p)
        tracked.append(t)
        ratios.append(t / p)
    return statistics.median(plain), statistics.median(tracked), statistics.median(ratios)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {args.rounds} rounds, medians of wall time")
    for label, extra in (("start-up (imports only)", ["imports"]), ("workload", [])):
        plain, tracked, ratio = compare(extra, args.rounds)
        print(
            f"{label:<24}: plain {plain * 1000:7.1f} ms, under lockdep run "
            f"{tracked * 1000:7.1f} ms, ratio {ratio:.2f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
