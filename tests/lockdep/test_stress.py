"""Stress: many threads, many nested acquisitions, bounded in time."""

from __future__ import annotations

import random
import threading

import pytest

import lockdep

pytestmark = pytest.mark.slow  # stress

THREADS = 8
ROUNDS = 3000


def test_consistent_order_from_eight_threads() -> None:
    locks = [lockdep.Mutex(f"level{i}") for i in range(6)]
    spare = [lockdep.Mutex(f"level{i}") for i in range(6)]  # same classes, other instances
    errors: list[BaseException] = []
    leftovers: list[int] = []
    start = threading.Barrier(THREADS)

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        try:
            start.wait(10)
            for _ in range(ROUNDS):
                # A random increasing subset of levels, each from either instance set.
                chosen = sorted(rng.sample(range(6), rng.randint(1, 6)))
                taken = [(locks if rng.random() < 0.5 else spare)[i] for i in chosen]
                for m in taken:
                    m.lock()
                rng.shuffle(taken)  # release in any order
                for m in taken:
                    m.unlock()
            leftovers.append(len(lockdep.held_locks()))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert leftovers == [0] * THREADS
    assert lockdep.stats()["violations"] == 0
    assert all(not m.is_locked() for m in locks + spare)


def test_inversions_found_under_concurrency() -> None:
    """Several threads race to establish opposite orders on separate instances: exactly
    one order wins, every thread that tries the other is told, and nobody deadlocks."""
    seen: list[lockdep.Violation] = []
    lock = threading.Lock()
    lockdep.configure(on_violation=lambda v: (lock.acquire(), seen.append(v), lock.release()))
    start = threading.Barrier(THREADS)

    def worker(n: int) -> None:
        a, b = lockdep.Mutex("X"), lockdep.Mutex("Y")  # private instances: no real waiting
        start.wait(10)
        for _ in range(200):
            first, second = (a, b) if n % 2 else (b, a)
            with first, second:
                pass

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    assert seen, "the inversion must be found"
    assert {v.kind for v in seen} == {"order"}
    edges = {(e["from"], e["to"]) for e in lockdep.graph()["edges"]}
    assert len(edges) == 1, "the graph stays acyclic"
