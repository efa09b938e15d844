"""lockdep's performance contract (SPEC 3.8, issue 9), measured side by side in one run.

Each lock row is measured on both implementations of the hot path (see
lockdep/fastpath.py), the C extension and pure Python, in the same rounds:

1. lockdep on, a validated chain of two nested Mutexes vs the same nesting with
   bare threading.Lock context managers (targets: C <= 1.5x, Python <= 3x).
2. install()'s tracked threading.Lock, a validated nested pair, vs the untracked
   lock (targets: C <= 1.5x, Python <= 4x).
3. A validated nesting of two instances of one class (tracked locks made on one
   line, so one class; the order between the two is known) vs untracked locks
   (target <= 4x): the instance check stays on a cached path.
4. lockdep off (enabled=False) vs threading.Lock (targets: C <= 1.1x, Python <= 1.5x).
5. The cost of a new edge in a graph of 10,000 classes vs one of 100 (target <= 10x).

Every figure is a median over several rounds; the baseline is re-measured in
each round, next to what it is compared with, so that a noisy machine moves
both. Run: python benchmarks/lockdep_bench.py [--rounds N] [--quick]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import lockdep


def nested(a: object, b: object, n: int) -> float:
    """Seconds per iteration of `with a: with b: pass`."""
    start = time.perf_counter()
    for _ in range(n):
        with a:  # type: ignore[attr-defined]
            with b:  # type: ignore[attr-defined]
                pass
    return (time.perf_counter() - start) / n


PATHS = lockdep.fastpath.AVAILABLE  # ("c", "python"), or ("python",) without the extension
Result = tuple[float, float, float]  # median ns of the baseline, of the candidate, ratio


def ratio_rounds(
    make, rounds: int, n: int, paths: tuple[str, ...] = ("python",)
) -> dict[str, Result]:
    """Per path: median ns of the baseline, of the candidate, and of their per-round
    ratios. The paths take turns within each round."""
    base_ns: dict[str, list[float]] = {p: [] for p in paths}
    cand_ns: dict[str, list[float]] = {p: [] for p in paths}
    ratios: dict[str, list[float]] = {p: [] for p in paths}
    for _ in range(rounds):
        for path in paths:
            lockdep.configure(fast_path=path)
            la, lb = threading.Lock(), threading.Lock()
            ma, mb = make()
            nested(ma, mb, n // 10)  # warm: validates the chain, fills caches
            b1 = nested(la, lb, n)
            c = nested(ma, mb, n)
            b2 = nested(la, lb, n)
            base = (b1 + b2) / 2
            base_ns[path].append(base * 1e9)
            cand_ns[path].append(c * 1e9)
            ratios[path].append(c / base)
    lockdep.configure(fast_path=PATHS[0])
    return {
        p: (
            statistics.median(base_ns[p]),
            statistics.median(cand_ns[p]),
            statistics.median(ratios[p]),
        )
        for p in paths
    }


class PythonWrapper:
    """The floor of any pure-Python lock: __enter__/__exit__ around a C lock, nothing else."""

    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def __enter__(self) -> PythonWrapper:
        self._lock.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self._lock.release()


class SiteRecorder(PythonWrapper):
    """The floor plus what SPEC 3.1 asks of every acquisition: recording its site."""

    __slots__ = ("_site",)

    def __enter__(self) -> SiteRecorder:
        f = sys._getframe(1)
        self._lock.acquire()
        self._site = (f.f_code, f.f_lasti)
        return self


def two_tracked_locks() -> tuple[object, object]:
    """What two threading.Lock() calls give after install(): two sites, two classes."""
    outer = lockdep.instrument.Lock()
    inner = lockdep.instrument.Lock()
    return outer, inner


def two_instances_of_one_class() -> tuple[object, object]:
    """Two tracked locks of one class (one site): nesting them is ordered by instance."""
    outer, inner = (lockdep.instrument.Lock() for _ in range(2))
    return outer, inner


def build_graph(classes: int, rng: random.Random) -> tuple[list[lockdep.Mutex], list[int]]:
    """classes Mutexes with about 2 edges each, consistent with a hidden random order.

    Returns the locks and the hidden order (a permutation of indexes): each lock
    is nested with locks a little later in that order, the way subsystems nest
    locks locally, while creation order tells the graph nothing.
    """
    locks = [lockdep.Mutex(f"bench_class_{i}") for i in range(classes)]
    order = list(range(classes))
    rng.shuffle(order)
    for pos, i in enumerate(order):
        for _ in range(2):
            j = order[min(classes - 1, pos + rng.randint(1, 20))]
            if j != i:
                with locks[i], locks[j]:
                    pass
    return locks, order


def new_edge_cost(classes: int, rng: random.Random, edges: int) -> float:
    """Median seconds of an acquisition that adds a new, cycle-free edge."""
    lockdep.reset()
    locks, order = build_graph(classes, rng)
    graph = lockdep.tracker.LOCKDEP.checker.classes.graph
    times = []
    attempts = 0
    while len(times) < edges and attempts < edges * 50:
        attempts += 1
        pos = rng.randrange(classes - 1)
        i, j = order[pos], order[min(classes - 1, pos + rng.randint(1, 20))]
        if i == j or graph.has_edge(i * 8, j * 8):
            continue
        a, b = locks[i], locks[j]
        with a:
            start = time.perf_counter()
            b.lock()
            times.append(time.perf_counter() - start)
            b.unlock()
    for lock in locks:
        lock.close()
    lockdep.reset()
    return statistics.median(times)


def row(label: str, value: str, ratio: float | None = None, target: str = "") -> None:
    tail = f"   ratio {ratio:.2f}x (target {target})" if ratio is not None else ""
    print(f"{label:<36}: {value}{tail}")


TARGETS = {  # row -> path -> the most its ratio may be
    "on": {"c": 1.5, "python": 3.0},
    "tracked": {"c": 1.5, "python": 4.0},
    "instances": {"c": 4.0, "python": 4.0},
    "off": {"c": 1.1, "python": 1.5},
}


def both_paths(label: str, key: str, results: dict[str, Result]) -> bool:
    """Print a row with each path's figure side by side; whether all meet their target."""
    cells = []
    ok = True
    for path in PATHS:
        _, cand, ratio = results[path]
        target = TARGETS[key][path]
        ok = ok and ratio <= target
        cells.append(f"{path:>6} {cand:7.1f} ns {ratio:5.2f}x (<= {target}x)")
    print(f"{label:<36}: " + "   ".join(cells))
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--iterations", type=int, default=200_000)
    parser.add_argument("--quick", action="store_true", help="fewer iterations (a smoke run)")
    args = parser.parse_args()
    n = 20_000 if args.quick else args.iterations
    rounds = 3 if args.quick else args.rounds
    print(
        f"python {sys.version.split()[0]}, {rounds} rounds, {n} iterations each, medians; "
        f"hot path: {' and '.join(PATHS)}"
        + ("" if "c" in PATHS else f" (no C: {lockdep.fastpath.WHY_PURE})")
    )

    lockdep.configure(enabled=True, stats=False, backtrace=False, wait_timeout=None)
    mutexes = ratio_rounds(
        lambda: (lockdep.Mutex("bench_a"), lockdep.Mutex("bench_b")), rounds, n, PATHS
    )
    row("nested pair, threading.Lock", f"{mutexes[PATHS[0]][0]:8.1f} ns")
    ok = both_paths("nested pair, Mutex, lockdep on", "on", mutexes)
    # Where the time goes in Python: the floor of a Python-level lock, and the site record.
    floor = ratio_rounds(lambda: (PythonWrapper(), PythonWrapper()), rounds, n)["python"]
    row("  floor: Python enter/exit only", f"{floor[1]:8.1f} ns", floor[2], "information")
    site = ratio_rounds(lambda: (SiteRecorder(), SiteRecorder()), rounds, n)["python"]
    row("  floor + recording the site", f"{site[1]:8.1f} ns", site[2], "information")

    tracked = ratio_rounds(two_tracked_locks, rounds, n, PATHS)
    ok = both_paths("nested pair, tracked Lock (install)", "tracked", tracked) and ok
    instances = ratio_rounds(two_instances_of_one_class, rounds, n, PATHS)
    ok = both_paths("two instances of one class, nested", "instances", instances) and ok

    lockdep.configure(enabled=False)
    off = ratio_rounds(
        lambda: (lockdep.Mutex("bench_a"), lockdep.Mutex("bench_b")), rounds, n, PATHS
    )
    lockdep.configure(enabled=True)
    ok = both_paths("nested pair, Mutex, lockdep off", "off", off) and ok

    rng = random.Random(42)
    small, large = [], []
    edges = 50 if args.quick else 200
    for _ in range(rounds):
        small.append(new_edge_cost(100, rng, edges))
        large.append(new_edge_cost(10_000, rng, edges))
    s, big = statistics.median(small), statistics.median(large)
    edge_ratio = big / s
    row("new edge, 100 classes", f"{s * 1e6:8.1f} us")
    row("new edge, 10,000 classes", f"{big * 1e6:8.1f} us", edge_ratio, "<= 10x")
    ok = ok and edge_ratio <= 10
    print("all targets met" if ok else "a target is missed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
