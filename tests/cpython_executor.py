"""CPython's own thread-pool executor tests, run against threadpool.Executor.

    python tests/cpython_executor.py        (a CPython 3.13 with its test package)

Lib/test/test_concurrent_futures of the running interpreter, with
``concurrent.futures.ThreadPoolExecutor`` replaced by a subclass of
``threadpool.Executor`` that only takes its name (the tests, and the scripts
they run in subprocesses, import it by that name): in this process, and in
every Python started from it, through a ``.pth`` hook this script puts in the
interpreter's site-packages (its own virtual environment), active only while
``THREADPOOL_AS_TPE=1``.

Run: test_thread_pool (with the executor tests), test_as_completed, test_wait,
test_shutdown, test_init (initializers) and test_future, each module's
thread-pool classes and the tests that need no executor. Left out, and why:

* the process-pool classes of those modules, and test_process_pool and
  test_deadlock (process pools only): ``threadpool.Executor`` is a thread pool;
* nothing else: every thread-pool test runs, with the ``walltime`` and ``cpu``
  resources enabled (test_map_timeout, test_hang_global_shutdown_lock).

Exit status 0 when every test passed.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import sysconfig
import time
import unittest
from pathlib import Path

HOOK_MODULE = "threadpool_as_tpe"
HOOK = '''"""Installed by the threadpool project's tests/cpython_executor.py."""
import os

if os.environ.get("THREADPOOL_AS_TPE") == "1":
    import concurrent.futures
    import concurrent.futures.thread

    import threadpool

    class ThreadPoolExecutor(threadpool.Executor):
        """threadpool.Executor, under the name the tests import."""

    concurrent.futures.ThreadPoolExecutor = ThreadPoolExecutor
    concurrent.futures.thread.ThreadPoolExecutor = ThreadPoolExecutor
'''
MODULES = [
    "test_thread_pool",
    "test_as_completed",
    "test_wait",
    "test_shutdown",
    "test_init",
    "test_future",
]


def install_hook() -> None:
    """Put the swap where every interpreter of this environment imports it at start."""
    site = Path(sysconfig.get_paths()["purelib"])
    module = site / f"{HOOK_MODULE}.py"
    if not module.exists() or module.read_text() != HOOK:
        module.write_text(HOOK)
    pth = site / f"{HOOK_MODULE}.pth"
    if not pth.exists():
        pth.write_text(f"import {HOOK_MODULE}\n")


def thread_pool_tests(suite: unittest.TestSuite) -> unittest.TestSuite:
    """The tests of ``suite`` that are not process-pool tests."""
    kept = unittest.TestSuite()
    for test in suite:
        if isinstance(test, unittest.TestSuite):
            kept.addTests(thread_pool_tests(test))
        elif "ProcessPool" not in type(test).__name__:
            kept.addTest(test)
    return kept


def main() -> int:
    here = str(Path(__file__).resolve().parent)
    sys.path[:] = [p for p in sys.path if p and Path(p).resolve() != Path(here)]  # tests/threadpool
    if sys.version_info[:2] != (3, 13):
        print(f"needs CPython 3.13 (its test package), this is {sys.version}", file=sys.stderr)
        return 2
    install_hook()
    os.environ["THREADPOOL_AS_TPE"] = "1"
    importlib.reload(importlib.import_module(HOOK_MODULE))  # it ran before the variable was set
    import concurrent.futures

    import threadpool

    if not issubclass(concurrent.futures.ThreadPoolExecutor, threadpool.Executor):
        print("the swap did not take: ThreadPoolExecutor is not ours", file=sys.stderr)
        return 2
    probe = "from concurrent.futures import ThreadPoolExecutor as T; print(T.__mro__[1].__module__)"
    child = subprocess.run(  # as the tests start their scripts: isolated mode
        [sys.executable, "-I", "-c", probe], capture_output=True, text=True, check=False
    )
    if child.stdout.strip() != "threadpool.executor":
        print(f"the swap did not take in a child: {child.stdout}{child.stderr}", file=sys.stderr)
        return 2

    from test import support

    support.use_resources = ["walltime", "cpu"]
    loader = unittest.TestLoader()
    suite = unittest.TestSuite()
    for name in MODULES:
        module = __import__(f"test.test_concurrent_futures.{name}", fromlist=["*"])
        suite.addTests(thread_pool_tests(loader.loadTestsFromModule(module)))
    begin = time.monotonic()
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    took = time.monotonic() - begin
    print(
        f"CPython {sys.version.split()[0]} thread-pool executor tests against "
        f"threadpool.Executor: {result.testsRun} run, {len(result.failures)} failed, "
        f"{len(result.errors)} errors, {len(result.skipped)} skipped, in {took:.0f}s"
    )
    for test, why in result.skipped:
        print(f"  skipped {test.id()}: {why}")
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
