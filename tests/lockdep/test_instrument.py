"""install(): threading's locks tracked by allocation site, with the stdlib's semantics."""

from __future__ import annotations

import _thread
import logging
import logging.handlers
import os
import queue
import subprocess
import sys
import textwrap
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import lockdep
from lockdep.instrument import TrackedCondition, TrackedLock, TrackedRLock
from tests.conftest import run_in_thread

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.usefixtures("installed")


def test_factories_make_tracked_locks_named_by_site() -> None:
    line = sys._getframe().f_lineno
    lock = threading.Lock()  # the class is this line: line + 1
    rlock = threading.RLock()
    cond = threading.Condition()  # line + 3
    assert isinstance(lock, TrackedLock) and isinstance(rlock, TrackedRLock)
    assert isinstance(cond, TrackedCondition)
    with lock:
        (held,) = lockdep.held_locks()
    expected = f"tests/lockdep/test_instrument.py:{line + 1} in "
    assert held.name.startswith(expected), "the import path, the line, the function"
    assert held.name.endswith("test_factories_make_tracked_locks_named_by_site")
    with cond:
        (held,) = lockdep.held_locks()
    assert f":{line + 3} in " in held.name, "a Condition's own RLock: its site"


def test_abba_between_stdlib_locks_is_found() -> None:
    first = threading.Lock()  # two lines: two classes (one line would make one class)
    second = threading.Lock()

    def forward() -> None:
        with first, second:
            pass

    run_in_thread(forward)
    with second, pytest.raises(lockdep.LockOrderError) as info:
        first.acquire()
    assert "test_instrument.py" in info.value.violation.report


def test_enter_returns_true_like_the_stdlib() -> None:
    with threading.Lock() as got:
        assert got is True
    with threading.RLock() as got:
        assert got is True


def test_lock_released_by_another_thread_leaves_the_holders_stack() -> None:
    lock = threading.Lock()
    lock.acquire()
    run_in_thread(lock.release)
    assert lockdep.held_locks() == []
    assert not lock.locked()


def test_lock_retaken_by_its_holder_is_a_self_deadlock_reported_before_blocking() -> None:
    lock = threading.Lock()
    with lock:
        with pytest.raises(lockdep.RecursiveLockError) as raised:
            lock.acquire(timeout=30)  # would wait its full timeout for itself
        assert lock.locked() and len(lockdep.held_locks()) == 1
    assert "the same lock" in raised.value.violation.report


def test_first_wait_for_a_workers_signal_is_not_a_self_deadlock() -> None:
    done = threading.Lock()
    done.acquire()  # an acquire() call, not a with block: maybe a semaphore
    worker = threading.Thread(target=done.release)
    worker.start()
    assert done.acquire(timeout=30)  # waits for the worker, whoever runs first
    worker.join(10)
    done.release()
    assert lockdep.stats()["violations"] == 0


def test_timeout_zero_never_waits_so_it_is_a_trylock() -> None:
    lock = threading.Lock()
    with lock:
        assert lock.acquire(timeout=0) is False
        assert lock.acquire(False) is False
    assert lockdep.stats()["violations"] == 0


def test_lock_seen_as_a_binary_semaphore_may_be_retaken_by_its_holder() -> None:
    def semaphore() -> threading.Lock:
        return threading.Lock()  # one class for both uses below (a helper's caller)

    locks = [semaphore() for _ in range(2)]
    first, second = locks
    first.acquire()
    run_in_thread(first.release)  # released by another thread: a binary semaphore
    second.acquire()
    releaser = threading.Timer(0.01, second.release)
    releaser.start()
    try:
        assert second.acquire(timeout=30)  # waits for the other thread: no report
    finally:
        releaser.join(10)
    second.release()
    assert lockdep.stats()["violations"] == 0
    assert lockdep.held_locks() == []


def test_instances_of_one_class_nested_are_ordered_not_recursion() -> None:
    outer, inner = [threading.Lock() for _ in range(2)]  # one class
    with outer, inner:
        held = lockdep.held_locks()
    assert held[0].name == held[1].name
    assert held[0].instance and held[1].instance and held[0].instance != held[1].instance
    with outer, inner:  # the same order again: nothing to report
        pass
    with pytest.raises(lockdep.LockOrderError) as raised:
        with inner, outer:
            pass
    assert raised.value.violation.instances


def test_memory_handler_flushing_into_another_handler() -> None:
    """logging's handler locks share one site; MemoryHandler -> target nests them."""
    target = logging.StreamHandler(stream=open("/dev/null", "w"))  # noqa: SIM115
    memory = logging.handlers.MemoryHandler(capacity=2, target=target)
    logger = logging.getLogger("lockdep-test-memory")
    logger.addHandler(memory)
    logger.propagate = False
    try:
        for i in range(6):
            logger.warning("line %d", i)
    finally:
        logger.removeHandler(memory)
        memory.close()
        target.stream.close()
        target.close()
    assert lockdep.stats()["violations"] == 0


def test_stdlib_users_work_under_install() -> None:
    q: queue.Queue[int] = queue.Queue(maxsize=4)
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(q.put, i) for i in range(4)]
        got = sorted(q.get(timeout=10) for _ in range(4))
    assert got == [0, 1, 2, 3] and all(f.done() for f in futures)
    event = threading.Event()
    setter = threading.Thread(target=event.set)
    setter.start()
    assert event.wait(10)
    setter.join(10)
    barrier = threading.Barrier(2)
    waiter = threading.Thread(target=barrier.wait, args=(10,))
    waiter.start()
    barrier.wait(10)
    waiter.join(10)
    assert not setter.is_alive() and not waiter.is_alive()
    assert lockdep.stats()["violations"] == 0


def test_condition_wait_for_with_tracked_lock_and_rlock() -> None:
    for lock in (threading.Lock(), threading.RLock()):
        cond = threading.Condition(lock)
        ready = [False]

        def setter(cond: threading.Condition = cond, ready: list[bool] = ready) -> None:
            with cond:
                ready[0] = True
                cond.notify_all()

        with cond:
            t = threading.Thread(target=setter)
            t.start()
            assert cond.wait_for(lambda ready=ready: ready[0], timeout=10)
        t.join(10)
        assert not t.is_alive()
    assert lockdep.held_locks() == []


def test_rlock_semantics() -> None:
    r = threading.RLock()
    r.acquire()
    r.acquire()
    try:
        assert r._is_owned()
        # _recursion_count exists where the interpreter's RLock has it (3.11+).
        assert hasattr(r, "_recursion_count") == hasattr(_thread.RLock(), "_recursion_count")
        if hasattr(r, "_recursion_count"):
            assert r._recursion_count() == 2
        with pytest.raises(RuntimeError):
            run_in_thread(r.release)  # owner-checked by the interpreter, as in the stdlib
    finally:
        r.release()
        r.release()
    with pytest.raises(RuntimeError):
        r.release()
    assert "count=0" in repr(r) and "unlocked" in repr(r)


def test_repr_shows_state_and_class() -> None:
    lock = threading.Lock()
    assert repr(lock).startswith("<unlocked lockdep.TrackedLock object (class ")
    with lock:
        assert repr(lock).startswith("<locked ")


def test_at_fork_reinit_forgets_the_entry() -> None:
    lock = threading.Lock()
    lock.acquire()
    lock._at_fork_reinit()
    assert not lock.locked() and lockdep.held_locks() == []


def test_lock_dropped_while_held_is_pruned() -> None:
    def abandon() -> None:
        threading.Lock().acquire()

    abandon()
    assert lockdep.held_locks() == []


def test_uninstall_restores_and_tracked_locks_keep_working() -> None:
    lock = threading.Lock()
    lockdep.uninstall()
    try:
        assert threading.Lock is lockdep.instrument._ORIGINALS["Lock"]
        assert not isinstance(threading.Lock(), TrackedLock)
        with lock:
            assert lock.locked()
    finally:
        lockdep.install()


def test_install_is_idempotent() -> None:
    lockdep.install()
    lockdep.install()
    assert lockdep.installed()


def test_lock_type_follows_the_interpreter() -> None:
    lock = threading.Lock()
    if lockdep.instrument.LOCK_IS_TYPE:  # 3.13+: threading.Lock is the type
        assert sys.version_info >= (3, 13)
        assert isinstance(lock, threading.Lock)
        assert (threading.Lock | None).__args__[0] is threading.Lock
        again = type(lock)()
        assert isinstance(again, TrackedLock) and again is not lock
        with pytest.raises(TypeError):
            type("MyLock", (threading.Lock,), {})
        with pytest.raises(TypeError):
            threading.Lock(1)
    else:  # a factory function; its type cannot be instantiated, as _thread.lock
        with pytest.raises(TypeError):
            type(lock)()


def test_rlock_arguments_warn_where_the_interpreter_does() -> None:
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rlock = threading.RLock(1)
    assert isinstance(rlock, TrackedRLock)
    warned = any(issubclass(w.category, DeprecationWarning) for w in caught)
    assert warned == (sys.version_info >= (3, 13))


def test_install_adopts_the_stdlib_locks_made_before_it(tmp_path: Path) -> None:
    program = textwrap.dedent(
        """
        import logging, threading, lockdep
        handler = logging.StreamHandler()  # its lock is made now, untracked
        logging.getLogger("early").addHandler(handler)
        lockdep.install()
        from lockdep.instrument import TrackedRLock
        assert isinstance(logging._lock, TrackedRLock), type(logging._lock)
        assert isinstance(handler.lock, TrackedRLock), type(handler.lock)
        print(handler.lock.name)
        mine = threading.Lock()
        with handler.lock:
            with mine:
                pass
        lockdep.configure(on_violation="raise")
        try:
            with mine:
                with handler.lock:
                    pass
        except lockdep.LockOrderError:
            print("inversion found")
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", program],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    name, verdict = proc.stdout.split("\n")[:2]
    assert name.startswith("<stdlib>/logging/__init__.py:")
    assert "Handler.createLock" in name or "createLock for StreamHandler" in name
    assert name.endswith("for StreamHandler")
    assert verdict == "inversion found"


def test_a_held_stdlib_lock_is_not_adopted() -> None:
    from lockdep.adopt import MODULE_LOCKS, adopt

    assert ("logging", "_lock") in MODULE_LOCKS
    original = logging._lock
    raw = _thread.RLock()
    logging._lock = raw  # as if logging were imported before install()
    try:
        with raw:  # held by this thread
            adopt()
            assert logging._lock is raw
        taken, release = threading.Event(), threading.Event()

        def hold() -> None:
            with raw:
                taken.set()
                release.wait(10)

        holder = threading.Thread(target=hold)
        holder.start()
        try:
            assert taken.wait(10)
            adopt()
            assert logging._lock is raw, "held by another thread: left alone"
        finally:
            release.set()
            holder.join(10)
        adopt()
        assert isinstance(logging._lock, TrackedRLock), "free: adopted"
    finally:
        logging._lock = original
