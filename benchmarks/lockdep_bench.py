"""lockdep's performance contract (SPEC 3.8), measured side by side in one run.

1. lockdep on, a validated chain of two nested Mutexes vs the same nesting with
   bare threading.Lock context managers (target <= 3x; pure Python: <= 4x).
2. lockdep off (enabled=False) vs threading.Lock (target <= 1.5x).
3. The cost of a new edge in a graph of 10,000 classes vs one of 100 (target <= 10x).
4. install()'s tracked threading.Lock, a validated nested pair, vs the untracked
   lock (target <= 4x).
5. A validated nesting of two instances of one class (tracked locks made on one
   line, so one class; the order between the two is known) vs untracked locks
   (target <= 4x): the instance check stays on a cached path.

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


def ratio_rounds(make, rounds: int, n: int) -> tuple[float, float, float]:
    """Median ns of the baseline, of the candidate, and of their per-round ratios."""
    base_ns, cand_ns, ratios = [], [], []
    for _ in range(rounds):
        la, lb = threading.Lock(), threading.Lock()
        ma, mb = make()
        nested(ma, mb, n // 10)  # warm: validates the chain, fills caches
        b1 = nested(la, lb, n)
        c = nested(ma, mb, n)
        b2 = nested(la, lb, n)
        base = (b1 + b2) / 2
        base_ns.append(base * 1e9)
        cand_ns.append(c * 1e9)
        ratios.append(c / base)
    return statistics.median(base_ns), statistics.median(cand_ns), statistics.median(ratios)


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--iterations", type=int, default=200_000)
    parser.add_argument("--quick", action="store_true", help="fewer iterations (a smoke run)")
    args = parser.parse_args()
    n = 20_000 if args.quick else args.iterations
    rounds = 3 if args.quick else args.rounds
    print(f"python {sys.version.split()[0]}, {rounds} rounds, {n} iterations each")

    lockdep.configure(enabled=True, stats=False, backtrace=False, wait_timeout=None)
    base, cand, on_ratio = ratio_rounds(
        lambda: (lockdep.Mutex("bench_a"), lockdep.Mutex("bench_b")), rounds, n
    )
    row("nested pair, threading.Lock", f"{base:8.1f} ns")
    row("nested pair, Mutex, lockdep on", f"{cand:8.1f} ns", on_ratio, "<= 3x")
    # Where the time goes: the floor of a Python-level lock, and the site record.
    _, floor, floor_ratio = ratio_rounds(lambda: (PythonWrapper(), PythonWrapper()), rounds, n)
    row("  floor: Python enter/exit only", f"{floor:8.1f} ns", floor_ratio, "information")
    _, site, site_ratio = ratio_rounds(lambda: (SiteRecorder(), SiteRecorder()), rounds, n)
    row("  floor + recording the site", f"{site:8.1f} ns", site_ratio, "information")

    base, cand, tracked_ratio = ratio_rounds(two_tracked_locks, rounds, n)
    row("nested pair, tracked Lock (install)", f"{cand:8.1f} ns", tracked_ratio, "<= 4x")
    base, cand, instances_ratio = ratio_rounds(two_instances_of_one_class, rounds, n)
    row("two instances of one class, nested", f"{cand:8.1f} ns", instances_ratio, "<= 4x")

    lockdep.configure(enabled=False)
    base, cand, off_ratio = ratio_rounds(
        lambda: (lockdep.Mutex("bench_a"), lockdep.Mutex("bench_b")), rounds, n
    )
    lockdep.configure(enabled=True)
    row("nested pair, Mutex, lockdep off", f"{cand:8.1f} ns", off_ratio, "<= 1.5x")

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
    ok = (
        on_ratio <= 3
        and off_ratio <= 1.5
        and edge_ratio <= 10
        and tracked_ratio <= 4
        and instances_ratio <= 4
    )
    print("all targets met" if ok else "a target is missed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
