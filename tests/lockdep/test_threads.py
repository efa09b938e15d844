"""The thread registry: a thread's state is made whole before anything can use it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# What logging's _removeHandlerRef does when the collector finds a handler: take a
# tracked lock from a finalizer, in whatever thread the collection runs, possibly
# one that is just making its lockdep state. Run alone: pytest's own garbage
# changes when collections happen.
PROGRAM = textwrap.dedent(
    """
    import gc, threading, lockdep
    lock = lockdep.Mutex("taken-by-a-finalizer")
    runs, errors = [0], []
    started = threading.local()  # set just before a thread first touches lockdep

    def during_collection(phase, info):
        if phase == "start" and getattr(started, "yes", False):
            runs[0] += 1
            try:
                with lock:
                    pass
            except BaseException as exc:
                errors.append(repr(exc))

    def first_touch():
        started.yes = True
        lockdep.held_locks()

    gc.callbacks.append(during_collection)
    gc.set_threshold(1)
    threads = [threading.Thread(target=first_touch) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    gc.set_threshold(700)
    gc.callbacks.remove(during_collection)
    print(runs[0] > 0, errors[:1])
    """
)


@pytest.mark.slow
def test_a_collection_while_a_thread_attaches_finds_no_half_made_state() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", PROGRAM],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "True []", proc.stdout
