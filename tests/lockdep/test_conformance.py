"""CPython's own lock tests (Lib/test/lock_tests.py), run on the tracked types with
lockdep on and installed, so that the locks the tests make themselves are tracked too."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import lockdep
from lockdep.instrument import Lock, RLock, TrackedCondition

try:
    from test import lock_tests
except ImportError:  # the interpreter was built without its test package
    lock_tests = None


@pytest.fixture(autouse=True)
def no_violation(installed: None, collected: list[lockdep.Violation]) -> Iterator[None]:
    # Two of the LockTests take again a Lock their thread holds, on purpose
    # (test_reacquire: a binary semaphore released later by another thread;
    # test_state_after_timeout: a timed acquire expected to fail). Both took it
    # with acquire(), not a with block, so lockdep does not call them deadlocks.
    yield
    try:
        assert [v.report for v in collected] == []
    finally:
        collected.clear()  # the reports refer to the test's locks


if lock_tests is None:

    def test_cpython_lock_tests_are_available() -> None:
        pytest.fail(
            "CPython's test.lock_tests is missing from this interpreter (install its test "
            "package, e.g. Debian's libpython3-testsuite); the conformance tests cannot run"
        )

else:

    class TestTrackedLock(lock_tests.LockTests):  # type: ignore[misc]
        locktype = staticmethod(Lock)

    class TestTrackedRLock(lock_tests.RLockTests):  # type: ignore[misc]
        locktype = staticmethod(RLock)

    class TestTrackedCondition(lock_tests.ConditionTests):  # type: ignore[misc]
        condtype = staticmethod(TrackedCondition)
