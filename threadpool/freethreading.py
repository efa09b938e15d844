"""Whether a pool may lean on the GIL, and the switch that says it may not.

Two hand-offs of the pool are lock-free because the GIL makes them safe:
a ready-made queue's ``queue()`` appends to a deque and then looks at the
pool's idle workers without the pool lock (a worker lists itself idle and
only then looks at the queues, so one of the two always sees the other),
and a worker takes an item off a deque that producers append to. On a
free-threaded CPython (3.13t, 3.14t) running without the GIL
(``sys._is_gil_enabled()`` false) nothing orders those plain reads and
writes, so a pool made there takes the *locked paths* instead: every
``queue()`` appends and wakes a worker with the pool lock held, every hint
read without a lock is read under it, and a bounded queue's producers and
workers meet under the pool lock too. Correctness then rests on locks only.

``use_locked_paths(True)`` makes pools created from then on take the locked
paths on a normal build too (tests run the no-loss and stress suites
through them; the benchmarks print their cost); ``use_locked_paths(None)``
goes back to deciding by the interpreter. A pool keeps the choice it was
made with.
"""

from __future__ import annotations

import sys

_forced: bool | None = None


def gil_enabled() -> bool:
    """Whether this interpreter runs with the GIL (always, before 3.13)."""
    is_enabled = getattr(sys, "_is_gil_enabled", None)
    return True if is_enabled is None else bool(is_enabled())


def locked_paths() -> bool:
    """Whether a pool created now takes the locked paths (see the module docstring)."""
    return _forced if _forced is not None else not gil_enabled()


def use_locked_paths(on: bool | None) -> None:
    """Force the locked paths on (True) or off (False) for pools created from now on;
    None goes back to the default (on exactly when the GIL is off).

    Forcing them off on a free-threaded build is refused: it would be unsafe.
    """
    global _forced
    if on is not None and not isinstance(on, bool):
        raise TypeError(f"use_locked_paths() takes True, False or None, got {on!r}")
    if on is False and not gil_enabled():
        raise ValueError("the lock-free paths need the GIL, and this interpreter runs without it")
    _forced = on
