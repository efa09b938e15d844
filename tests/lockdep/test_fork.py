"""fork() while other threads are inside lockdep: the child must not deadlock."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = [
    pytest.mark.slow,  # subprocesses
    pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()"),
]

PROGRAM = textwrap.dedent(
    """
    import os, sys, threading, time
    import lockdep
    lockdep.install()
    stop = threading.Event()

    def churn():
        # Keeps lockdep's mutex busy: new classes and new edges, over and over.
        n = 0
        while not stop.is_set():
            n += 1
            a = lockdep.Mutex(f"churn-a-{n}")
            b = lockdep.Mutex(f"churn-b-{n}")
            with a, b:
                pass

    workers = [threading.Thread(target=churn, daemon=True) for _ in range(2)]
    for t in workers:
        t.start()
    for i in range(40):
        pid = os.fork()
        if pid == 0:
            # threading's own after-fork handler made an RLock already; make more.
            lock = threading.RLock()
            with lock, lockdep.Mutex(f"child-{i}"):
                pass
            os._exit(0)
        deadline = time.monotonic() + 20
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(pid, 9)
                print(f"child {i} hung after fork", flush=True)
                sys.exit(3)
            time.sleep(0.01)  # polling a child process: no event to wait on
        assert os.waitstatus_to_exitcode(status) == 0, status
    stop.set()
    for t in workers:
        t.join()
    print("ok")
    """
)


def test_fork_while_lockdep_is_busy_in_other_threads() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", PROGRAM], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip().endswith("ok")
