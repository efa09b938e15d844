"""What install() costs a program that never nests locks (issue: "not noticeably slower").

Runs benchmarks/workloads/no_nesting.py as ``python workload`` and as
``python -m lockdep run workload``, on each implementation of lockdep's hot path
(the C extension; pure Python with LOCKDEP_PURE=1), taking turns, several
rounds; prints median wall times and their ratios, for start-up alone (imports)
and for the workload (target <= 1.1x). Start-up includes importing lockdep
itself, which a program under the runner always pays.

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


PATHS = {"c": {}, "python": {"LOCKDEP_PURE": "1"}}


def wall(args: list[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(
        args, check=True, cwd=ROOT, stdout=subprocess.DEVNULL, env={**ENV, **(env or {})}
    )
    return time.perf_counter() - start


def compare(extra: list[str], rounds: int) -> tuple[float, dict[str, tuple[float, float]]]:
    """Median plain seconds; per path, median seconds under lockdep run and ratio."""
    plain_args = [sys.executable, str(WORKLOAD), *extra]
    tracked_args = [sys.executable, "-m", "lockdep", "run", str(WORKLOAD), *extra]
    plain: list[float] = []
    tracked: dict[str, list[float]] = {path: [] for path in PATHS}
    ratios: dict[str, list[float]] = {path: [] for path in PATHS}
    wall(plain_args)  # warm: caches bytecode
    wall(tracked_args)
    for _ in range(rounds):
        p = wall(plain_args)
        plain.append(p)
        for path, env in PATHS.items():
            t = wall(tracked_args, env)
            tracked[path].append(t)
            ratios[path].append(t / p)
    return statistics.median(plain), {
        path: (statistics.median(tracked[path]), statistics.median(ratios[path])) for path in PATHS
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {args.rounds} rounds, medians of wall time")
    for label, extra in (("start-up (imports only)", ["imports"]), ("workload", [])):
        plain, tracked = compare(extra, args.rounds)
        cells = ", ".join(
            f"{path} {t * 1000:6.1f} ms {ratio:.2f}x" for path, (t, ratio) in tracked.items()
        )
        print(f"{label:<24}: plain {plain * 1000:6.1f} ms; under lockdep run: {cells}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
