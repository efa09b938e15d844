"""The hot path's two implementations (C and pure Python): which is in use, that they
record the same thing, and the C extension's safety (references, signals, threads
that die holding locks, fork, interpreter shutdown).

The rest of the suite runs against whichever implementation is in use; `make test`
runs tests/lockdep a second time with LOCKDEP_PURE=1. Tests that compare the two
in one process need the C extension and are skipped without it, except in CI
(REQUIRE_C_FASTPATH=1), where a missing extension fails them.
"""

from __future__ import annotations

import gc
import logging
import os
import queue
import subprocess
import sys
import textwrap
import threading
import weakref
from collections.abc import Callable, Iterator

import pytest

import lockdep
from lockdep import fastpath
from lockdep.held import CODE, LASTI
from lockdep.instrument import Lock, RLock
from lockdep.tracker import LOCKDEP

PURE = os.environ.get(fastpath.PURE_VARIABLE, "") not in ("", "0")
HAS_C = "c" in fastpath.AVAILABLE
# Where the C path must be there: in CI, unless pure Python is forced.
WANT_C = HAS_C or (bool(os.environ.get("REQUIRE_C_FASTPATH")) and not PURE)

needs_c = pytest.mark.skipif(
    not WANT_C, reason=f"the C fast path is not available: {fastpath.WHY_PURE}"
)
IMPLEMENTATIONS = ["c", "python"] if WANT_C else ["python"]


@pytest.fixture(params=IMPLEMENTATIONS)
def implementation(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run the test under each implementation available (both, in CI)."""
    before = lockdep.settings()["fast_path"]
    if request.param == "c" and not HAS_C:
        pytest.fail(
            f"REQUIRE_C_FASTPATH is set but the C fast path is missing: {fastpath.WHY_PURE}"
        )
    lockdep.configure(fast_path=request.param)
    try:
        yield request.param
    finally:
        lockdep.configure(fast_path=before)


def run_python(
    code: str, *, pure: bool = False, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != fastpath.PURE_VARIABLE}
    if pure:
        env[fastpath.PURE_VARIABLE] = "1"
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


# --- which implementation ------------------------------------------------------------


def test_settings_name_the_implementation_in_use() -> None:
    expected = "python" if PURE or not HAS_C else "c"
    assert lockdep.settings()["fast_path"] == expected


def test_ci_has_the_c_extension() -> None:
    if not os.environ.get("REQUIRE_C_FASTPATH") or PURE:
        pytest.skip("only where REQUIRE_C_FASTPATH is set (CI), without LOCKDEP_PURE")
    assert HAS_C, fastpath.WHY_PURE
    assert lockdep.settings()["fast_path"] == "c"


@pytest.mark.slow
def test_lockdep_pure_forces_python_and_says_why_c_is_refused() -> None:
    result = run_python(
        """
        import lockdep
        from lockdep import fastpath
        print(lockdep.settings()["fast_path"], lockdep.Mutex.__mro__[1].__module__)
        try:
            lockdep.configure(fast_path="c")
        except ValueError as exc:
            print(exc)
        """,
        pure=True,
    )
    assert result.returncode == 0, result.stderr
    first, error = result.stdout.splitlines()
    assert first == "python lockdep.fastpath"
    assert "LOCKDEP_PURE is set" in error and "'c'" in error


def test_configure_rejects_an_unknown_implementation() -> None:
    with pytest.raises(ValueError, match="fast_path must be one of"):
        lockdep.configure(fast_path="rust")
    with pytest.raises(ValueError, match="fast_path must be one of"):
        lockdep.configure(fast_path=None)  # type: ignore[arg-type]


def test_settings_round_trip_through_configure() -> None:
    assert lockdep.configure(**lockdep.settings()) == lockdep.settings()


@pytest.fixture
def either_path() -> Iterator[None]:
    before = lockdep.settings()["fast_path"]
    try:
        yield
    finally:
        lockdep.configure(fast_path=before)


@needs_c
def test_a_lock_taken_on_one_path_is_released_on_the_other(either_path: None) -> None:
    a, b = lockdep.Mutex("A"), lockdep.Mutex("B")
    with a, b:
        pass
    lockdep.configure(fast_path="c")
    a.lock()
    lockdep.configure(fast_path="python")
    b.lock()
    assert [h.name for h in lockdep.held_locks()] == ["A", "B"]
    lockdep.configure(fast_path="c")
    b.unlock()
    lockdep.configure(fast_path="python")
    a.unlock()
    assert lockdep.held_locks() == []
    assert not a.is_locked() and not b.is_locked()


# --- the same records on both paths ----------------------------------------------------


def _sites() -> list[tuple[str, int]]:
    return [(h.name, h.site.line) for h in lockdep.held_locks()]


def _line() -> int:
    return sys._getframe(1).f_lineno


def test_fast_path_records_the_callers_line(implementation: str) -> None:
    a, b = lockdep.Mutex("A"), lockdep.Mutex("B")
    for _ in range(2):  # the second time round, both acquisitions hit the cache
        with a:
            first = _line() - 1
            b.lock()
            second = _line() - 1
            assert _sites() == [("A", first), ("B", second)]
            b.unlock()
    assert a.acquire() is True
    third = _line() - 1
    assert _sites() == [("A", third)]
    a.release()


def test_entries_match_what_python_records(implementation: str) -> None:
    a = lockdep.Mutex("A")
    with a:
        pass
    with a:
        frame = sys._getframe()
        entry = LOCKDEP.local.held[-1]
        assert entry[CODE] is frame.f_code
        assert entry[LASTI] < frame.f_lasti  # the with statement, just before this line
        assert entry[:3] == (a, a._fkey, LOCKDEP.local.held[0][2].get(a._fkey))


def test_try_lock_and_subclass_on_the_fast_path(implementation: str) -> None:
    a, b, b2 = lockdep.Mutex("A"), lockdep.Mutex("B"), lockdep.Mutex("B")
    for _ in range(2):
        with a:
            assert b.try_lock() is True
            assert [h.trylock for h in lockdep.held_locks()] == [False, True]
            assert b.try_lock() is False  # held: not taken, not pushed
            b.unlock()
            b.lock(subclass=1)
            b2.lock(2)
            assert [h.subclass for h in lockdep.held_locks()] == [0, 1, 2]
            b2.unlock()
            b.unlock()


def test_argument_errors_are_the_same(implementation: str) -> None:
    m = lockdep.Mutex("A")
    with pytest.raises(TypeError):
        m.lock(1, 2)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        m.lock(flavour=1)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="subclass must be an int"):
        m.lock(subclass="1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="subclass must be an int"):
        m.lock(subclass=8)
    with pytest.raises(ValueError, match="non-blocking"):
        m.acquire(False, 1)
    with pytest.raises(TypeError):
        m.acquire(True, -1, 3)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        m.acquire(blocking=True, blocking_too=True)  # type: ignore[call-arg]
    assert lockdep.held_locks() == [] and not m.is_locked()


def test_tracked_locks_skip_thin_wrappers_on_the_fast_path(implementation: str) -> None:
    outer, cond = Lock(), threading.Condition(Lock())
    for _ in range(2):
        with outer:
            with cond:  # Condition.__enter__ takes the lock: the site is this line
                line = _line() - 1
                assert _sites()[-1][1] == line


def test_the_site_skips_nested_thin_wrappers(implementation: str) -> None:
    # queue.Queue.put takes its lock in Condition.__enter__ (threading.py) called
    # from put (queue.py): both are skipped, alternating with another wrapper file.
    seen: list[tuple[str, int]] = []

    class Recording(queue.Queue[int]):
        def _put(self, item: int) -> None:
            seen.append(_sites()[-1])
            super()._put(item)

    q, cond = Recording(), threading.Condition(Lock())
    for _ in range(3):  # learned, then from the cache
        q.put(1)
        put_line = _line() - 1
        with cond:
            cond_line = _line() - 1
            assert _sites()[-1][1] == cond_line
        assert seen[-1][1] == put_line


def test_a_thin_wrappers_file_skips_only_its_named_functions(implementation: str) -> None:
    # logging's Handler.acquire is a thin wrapper; Handler.handle, which calls it,
    # is not: the site is handle's line, in logging.
    seen: list[lockdep.HeldLock] = []

    class Recording(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(lockdep.held_locks()[-1])

    handler = Recording()
    for _ in range(3):
        handler.handle(logging.makeLogRecord({"msg": "m"}))
    assert [h.site.function for h in seen] == ["handle"] * 3
    assert [h.site.file for h in seen] == [logging.__file__] * 3
    assert len({h.site.line for h in seen}) == 1


def test_both_implementations_record_the_same_entries() -> None:
    r, other = RLock(), Lock()
    cond = threading.Condition(r)
    recorded: dict[str, list[tuple[object, ...]]] = {}
    before = lockdep.settings()["fast_path"]
    for name in fastpath.AVAILABLE:
        lockdep.configure(fast_path=name)
        try:
            for _ in range(2):  # learned, then from the cache: what is recorded is the last
                with other:
                    with cond:  # Condition.__enter__: the site is this line
                        with r:  # re-entered
                            recorded[name] = [
                                (e[0], e[1], e[CODE], e[LASTI], e[5] is not None and e[5].reentry)
                                for e in LOCKDEP.local.held[1:]
                            ]
        finally:
            lockdep.configure(fast_path=before)
    for entries in recorded.values():
        assert [e[0] for e in entries] == [other, r, r]
        assert [e[4] for e in entries] == [False, False, True]
        assert {e[2] for e in entries} == {sys._getframe().f_code}
    assert len({tuple(entries) for entries in recorded.values()}) == 1, recorded


@pytest.mark.parametrize("enabled", [True, False])
def test_is_owned_is_conditions_answer(implementation: str, enabled: bool) -> None:
    # threading.Condition asks _is_owned at every notify: a Lock has no owner (taken
    # by anyone counts), an RLock's owner is the thread holding it.
    lockdep.configure(enabled=enabled)
    lock, rlock = Lock(), RLock()
    assert lock._is_owned() is False and rlock._is_owned() is False
    with lock, rlock:
        assert lock._is_owned() is True and rlock._is_owned() is True
        assert run_in_thread_result(lock._is_owned) is True
        assert run_in_thread_result(rlock._is_owned) is False
        for cond in (threading.Condition(lock), threading.Condition(rlock)):
            cond.notify()  # owned: no RuntimeError
    with pytest.raises(RuntimeError, match="un-acquired lock"):
        threading.Condition(rlock).notify()
    with pytest.raises(RuntimeError, match="un-acquired lock"):
        threading.Condition(lock).notify()


def test_a_wait_gives_back_and_retakes_the_same_entries(implementation: str) -> None:
    outer, lock, rlock = Lock(), Lock(), RLock()
    for inner in (lock, rlock):
        cond = threading.Condition(inner)
        for _ in range(3):  # learned, then re-taken from the cache
            with outer:
                with cond:
                    before = lockdep.held_locks()
                    assert cond.wait(0) is False
                    line = _line() - 1
                    after = lockdep.held_locks()
                    assert [h.lock for h in after] == [h.lock for h in before] == [outer, inner]
                    assert after[0] == before[0]
                    assert after[1].site.line == line  # the wait's caller re-took it
                    assert inner._is_owned()
            assert lockdep.held_locks() == [] and not inner._is_owned()


def test_a_wait_on_a_lock_held_alone_retakes_its_entry(implementation: str) -> None:
    for inner in (Lock(), RLock()):
        cond = threading.Condition(inner)
        for _ in range(3):  # learned, then re-taken from the cache
            with cond:
                (before,) = lockdep.held_locks()
                assert cond.wait(0) is False
                line = _line() - 1
                (after,) = lockdep.held_locks()
                assert after.lock is before.lock is inner
                assert after.site.line == line and before.site.line == line - 2
                assert inner._is_owned()
            assert lockdep.held_locks() == [] and not inner._is_owned()


def test_a_wait_with_other_locks_and_tombstones_below_retakes_only_its_entry(
    implementation: str,
) -> None:
    """The lock on top, other locks below it, and a tombstone (a lock released out of
    order) between: the wait gives back its entry alone, and the re-take puts it on
    top again, on both implementations."""
    outer, middle = Lock(), Lock()
    for inner in (Lock(), RLock()):
        cond = threading.Condition(inner)
        for _ in range(3):  # learned, then from the cache
            outer.acquire()
            middle.acquire()
            with cond:
                outer.release()  # out of order: a tombstone under middle
                before = [h.lock for h in lockdep.held_locks()]
                assert before == [middle, inner]
                assert cond.wait(0) is False
                line = _line() - 1
                after = lockdep.held_locks()
                assert [h.lock for h in after] == [middle, inner]
                assert after[-1].site.line == line
                assert inner._is_owned()
            middle.release()
            assert lockdep.held_locks() == [] and not inner._is_owned()
    assert lockdep.stats()["violations"] == 0


@needs_c
@pytest.mark.parametrize("made_under", ["c", "python"])
def test_a_condition_waits_right_whichever_implementation_made_it(
    implementation: str, made_under: str
) -> None:
    """A Condition binds its lock's wait methods when it is made: they follow a later
    change of implementation."""
    lockdep.configure(fast_path=made_under)
    lock = Lock()
    cond = threading.Condition(lock)
    lockdep.configure(fast_path=implementation)
    for _ in range(2):
        with cond:
            assert cond.wait(0) is False
            line = _line() - 1
            (after,) = lockdep.held_locks()
            assert after.lock is lock and after.site.line == line
        assert lockdep.held_locks() == [] and not lock.locked()


def test_a_condition_made_in_the_fast_mode_waits_in_the_checked_mode(
    implementation: str,
) -> None:
    lock = Lock()
    cond = threading.Condition(lock)
    with cond:  # the chain learned, in the fast mode
        cond.wait(0)
    lockdep.configure(backtrace=True)
    try:
        with cond:
            assert cond.wait(0) is False
            (after,) = lockdep.held_locks()
            assert after.stack is not None  # re-taken the checked mode's way
    finally:
        lockdep.configure(backtrace=False)
    assert lockdep.held_locks() == [] and not lock.locked()


def test_the_wait_methods_called_directly_record_their_callers_caller(
    implementation: str,
) -> None:
    """What Condition.wait does, from code that is not a thin wrapper: the re-take's
    site is the caller's caller, on both implementations."""

    def retake(lock: Lock, saved: object) -> None:
        lock._acquire_restore(saved)  # type: ignore[attr-defined]

    for lock in (Lock(), RLock()):
        for _ in range(2):
            with lock:
                saved = lock._release_save()  # type: ignore[attr-defined]
                assert lockdep.held_locks() == []
                retake(lock, saved)
                line = _line() - 1
                (after,) = lockdep.held_locks()
                assert after.lock is lock and after.site.line == line
            assert lockdep.held_locks() == []


def test_a_wait_on_a_reentered_rlock_retakes_every_entry(implementation: str) -> None:
    r = RLock()
    cond = threading.Condition(r)
    for _ in range(2):
        with r, cond:
            assert cond.wait(0) is False
            assert [(h.lock, h.reentry) for h in lockdep.held_locks()] == [
                (r, False),
                (r, True),
            ]
            if hasattr(r, "_recursion_count"):
                assert r._recursion_count() == 2
        assert lockdep.held_locks() == [] and not r._is_owned()


def test_a_cond_wait_on_a_mutex_retakes_it(implementation: str) -> None:
    a, m = lockdep.Mutex("A"), lockdep.Mutex("M")
    cond = lockdep.Cond(m)
    for _ in range(3):
        with a, m:
            assert cond.wait(timeout=0) is False
            assert [h.name for h in lockdep.held_locks()] == ["A", "M"]
            assert m.is_locked_by_me()
    with pytest.raises(lockdep.LockOrderError):  # the order learned holds after waits
        with m, a:
            pass


def test_instance_nesting_on_the_cached_path(implementation: str) -> None:
    x, y = (Lock() for _ in range(2))
    for _ in range(3):  # learned, then validated again from the cache
        with x:
            with y:
                assert [h.lock for h in lockdep.held_locks()] == [x, y]
    with pytest.raises(lockdep.LockOrderError):
        with y:
            with x:
                pass
    assert lockdep.held_locks() == []


def test_a_reentered_rlock_is_pushed_as_a_reentry(implementation: str) -> None:
    r, other = RLock(), Lock()
    for _ in range(2):
        with r:
            with other:
                with r:  # re-entered above another lock
                    with r:  # and at once
                        assert [h.reentry for h in lockdep.held_locks()] == [
                            False,
                            False,
                            True,
                            True,
                        ]
                        assert [h.lock for h in lockdep.held_locks()] == [r, other, r, r]
    assert lockdep.held_locks() == [] and not r._is_owned()


@pytest.mark.parametrize("settings", [{}, {"enabled": False}, {"stats": True}])
def test_lock_methods_have_signatures(implementation: str, settings: dict[str, bool]) -> None:
    import inspect

    lockdep.configure(**settings)
    for cls in (lockdep.Mutex, type(Lock())):
        for name in ("lock", "unlock", "acquire", "release", "try_lock", "__enter__", "__exit__"):
            assert str(inspect.signature(getattr(cls, name))).startswith("(self"), (cls, name)


def test_disabled_locks_record_their_owner(implementation: str) -> None:
    m, r = lockdep.Mutex("A"), lockdep.Mutex("R", recursive=True)
    lockdep.configure(enabled=False)
    with m, r:
        assert m.is_locked_by_me() and r.is_locked_by_me()
        assert run_in_thread_result(m.is_locked_by_me) is False
    assert not m.is_locked_by_me()
    assert m.try_lock() is True and m.is_locked_by_me()
    m.release()
    assert m.acquire(False) is True and m.acquire(timeout=0) is False
    m.unlock()
    with pytest.raises(ValueError, match="subclass"):
        m.lock(subclass=9)


def run_in_thread_result(target: Callable[[], object]) -> object:
    from tests.conftest import run_in_thread

    return run_in_thread(target)


# --- safety of the C extension ---------------------------------------------------------


def _refcounts(*objects: object) -> list[int]:
    return [sys.getrefcount(o) for o in objects]


@pytest.mark.skipif(not hasattr(sys, "getrefcount"), reason="needs reference counts")
def test_no_reference_is_leaked(implementation: str) -> None:
    a, b = lockdep.Mutex("A"), lockdep.Mutex("B")
    x, y = (Lock() for _ in range(2))
    r = RLock()
    code = sys._getframe().f_code

    def exercise() -> None:
        for _ in range(50):
            with a, b:
                pass
            a.lock()
            b.acquire()
            b.release()
            assert b.try_lock()
            b.unlock()
            a.unlock()
            with x, y, r, r:
                pass
            x.acquire()
            x.release()
            with pytest.raises(lockdep.LockOrderError):
                with b, a:
                    pass
            for cond in conds:  # the wait methods
                with cond:
                    cond.wait(0)
                with a, cond:  # not alone on the stack: Python's way
                    cond.wait(0)

    conds = [threading.Condition(x), threading.Condition(r)]
    exercise()  # warm: caches filled, violations recorded once
    gc.collect()
    chain = LOCKDEP.local.held[0][2]
    before = _refcounts(a, b, x, y, r, code, chain, x._lock, r._lock)
    exercise()
    gc.collect()
    after = _refcounts(a, b, x, y, r, code, chain, x._lock, r._lock)
    assert after == before


def test_a_thread_that_dies_holding_locks_leaves_nothing_behind(implementation: str) -> None:
    a = lockdep.Mutex("A")
    gone = lockdep.Mutex("gone")
    with a, gone:  # validated: the thread below takes the fast path
        pass
    ref = weakref.ref(gone)

    def hold_and_die(lock: lockdep.Mutex) -> None:
        with a:
            pass
        a.lock()
        lock.lock()

    thread = threading.Thread(target=hold_and_die, args=(gone,))
    thread.start()
    thread.join(30)
    assert not thread.is_alive()
    del gone
    gc.collect()
    assert ref() is None, "the dead thread's held stack keeps its locks alive"
    # The next thread gets a stack of its own, not the dead one's.
    assert run_in_thread_result(lockdep.held_locks) == []
    assert a.is_locked()  # the dead thread never released it


def test_many_threads_keep_their_own_stacks(implementation: str) -> None:
    locks = [lockdep.Mutex(f"L{i}") for i in range(4)]
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def work() -> None:
        try:
            start.wait(30)
            for _ in range(500):
                with locks[0], locks[1]:
                    with locks[2]:
                        assert [h.lock for h in lockdep.held_locks()] == locks[:3]
                with locks[3]:
                    assert [h.lock for h in lockdep.held_locks()] == [locks[3]]
            assert lockdep.held_locks() == []
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(t.is_alive() for t in threads)
    assert errors == []


# --- entries made again in place (the C path keeps released ones as spares) -----------


def test_an_entry_somebody_keeps_is_never_made_again(implementation: str) -> None:
    a, b = lockdep.Mutex("A"), lockdep.Mutex("B")
    x = Lock()
    with a:  # validated: the acquisitions below are on the fast path
        kept = LOCKDEP.local.held[-1]
        seen = list(kept)
    for _ in range(20):
        for lock in (b, x, a):
            with lock:
                pass
    assert list(kept) == seen and kept[0] is a


def test_an_entry_made_again_is_tracked_by_the_collector(implementation: str) -> None:
    a, b = lockdep.Mutex("A"), lockdep.Mutex("B")
    for _ in range(20):
        with a, b:
            assert all(gc.is_tracked(entry) for entry in LOCKDEP.local.held[1:])
            assert [h.lock for h in lockdep.held_locks()] == [a, b]


SPARES_UNSEEN = """
import gc, sys, threading
import lockdep
lockdep.configure(fast_path=sys.argv[1])
lockdep.install()
a, b, c = lockdep.Mutex("A"), lockdep.Mutex("B"), threading.RLock()
for _ in range(100):
    with a, b, c, c:
        pass
gc.collect()
items = [list(o) for o in gc.get_objects() if type(o) is tuple]
items += [list(o) for o in gc.get_referrers(a) if type(o) is tuple]
print("seen", len(items) > 0)
"""


@pytest.mark.parametrize("path", IMPLEMENTATIONS)
def test_the_collector_never_shows_a_released_entry(path: str) -> None:
    # A released entry kept for the next acquisition has no items: were the collector
    # to list it, reading it would crash the interpreter.
    done = subprocess.run(
        [sys.executable, "-c", SPARES_UNSEEN, path], capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stdout.strip(), done.stderr) == (0, "seen True", "")


INTERRUPT = """
import os, signal, sys, threading
import lockdep
lockdep.configure(fast_path=sys.argv[1])
m = lockdep.Mutex("m")
lockdep.install()
tracked = threading.Lock()
done = threading.Event()

def on_sigint(signum, frame):
    if not done.is_set():  # a late signal, once interrupted, is dropped
        raise KeyboardInterrupt

signal.signal(signal.SIGINT, on_sigint)
for lock in (m, tracked):
    with lock:  # validated: the acquisition below is on the fast path
        pass
    holder_has_it, main_blocks, done = threading.Event(), threading.Event(), threading.Event()
    main = threading.main_thread().ident

    def hold():
        with lock:
            holder_has_it.set()
            done.wait(30)

    def interrupt():
        main_blocks.wait(30)
        while not done.is_set():
            os.kill(os.getpid(), signal.SIGINT)
            done.wait(0.05)

    holder = threading.Thread(target=hold)
    holder.start()
    holder_has_it.wait(30)
    interrupter = threading.Thread(target=interrupt)
    interrupter.start()
    try:
        main_blocks.set()
        lock.acquire()
        print("acquired?!")
    except KeyboardInterrupt:
        print("interrupted", lockdep.held_locks())
    done.set()
    interrupter.join(30)
    holder.join(30)
    with lock:
        print("taken after", len(lockdep.held_locks()))
"""


@pytest.mark.slow
@pytest.mark.parametrize("path", IMPLEMENTATIONS)
def test_a_blocked_acquire_is_interrupted_by_ctrl_c(path: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", INTERRUPT, path], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n") == [
        "interrupted []",
        "taken after 1",
        "interrupted []",
        "taken after 1",
        "",
    ], result.stdout + result.stderr


SHUTDOWN = """
import atexit, sys, threading
import lockdep
lockdep.configure(fast_path=sys.argv[1])
a, b = lockdep.Mutex("a"), lockdep.Mutex("b")
lockdep.install()
t = threading.Lock()
started = threading.Event()

def spin():
    while True:
        with a, b:
            started.set()
        with t:
            pass

for _ in range(4):
    threading.Thread(target=spin, daemon=True).start()
started.wait(30)
# Called by the interpreter with no Python frame to record: validated
# acquisitions on the fast path, with no site.
atexit.register(a.unlock)
atexit.register(a.lock)
atexit.register(t.release)
atexit.register(t.acquire)
c = lockdep.Mutex("c")
c.lock()  # held at exit
print("exiting")
"""


@pytest.mark.slow
@pytest.mark.parametrize("path", IMPLEMENTATIONS)
def test_interpreter_shutdown_with_threads_in_the_fast_path(path: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", SHUTDOWN, path], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "exiting\n"
    assert result.stderr == ""


FORK = """
import os, sys, threading
import lockdep
lockdep.configure(fast_path=sys.argv[1])
a, b = lockdep.Mutex("a"), lockdep.Mutex("b")
other_holds, fork_done = threading.Event(), threading.Event()

def hold():
    with b:
        other_holds.set()
        fork_done.wait(30)

with a, b:
    pass
holder = threading.Thread(target=hold)
holder.start()
other_holds.wait(30)
with a:
    pid = os.fork()
    if pid == 0:
        # The child: the forking thread's stack survives, the other thread's is gone.
        ok = [h.name for h in lockdep.held_locks()] == ["a"]
        a.unlock()
        with a:
            ok = ok and len(lockdep.held_locks()) == 1
        os._exit(0 if ok else 1)
fork_done.set()
holder.join(30)
_, status = os.waitpid(pid, 0)
print("child", os.waitstatus_to_exitcode(status))
"""


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
@pytest.mark.parametrize("path", IMPLEMENTATIONS)
def test_fork_keeps_the_forking_threads_stack(path: str) -> None:
    result = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", FORK, path],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "child 0\n", result.stdout + result.stderr


SUBINTERPRETER = """
import sys
import _testcapi
import lockdep

code = '''
import sys
sys.path[:0] = %r
import lockdep
a, b = lockdep.Mutex("a"), lockdep.Mutex("b")
for _ in range(2):
    with a, b:
        pass
print("sub", lockdep.settings()["fast_path"])
''' % (sys.path,)
print("main", lockdep.settings()["fast_path"])
print("status", _testcapi.run_in_subinterp(code))
a, b = lockdep.Mutex("a"), lockdep.Mutex("b")
for _ in range(2):
    with a, b:
        pass
print("main", lockdep.settings()["fast_path"], len(lockdep.held_locks()))
"""


@pytest.mark.slow
@needs_c
def test_a_subinterpreter_gets_pure_python() -> None:
    pytest.importorskip("_testcapi")
    result = subprocess.run(
        [sys.executable, "-c", SUBINTERPRETER], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n") == [
        "main c",
        "sub python",
        "status 0",
        "main c 0",
        "",
    ], result.stdout + result.stderr
