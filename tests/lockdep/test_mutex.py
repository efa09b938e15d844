"""Mutex: the threading-compatible API, trylock, timeouts, subclasses, bad input."""

from __future__ import annotations

import gc
import threading

import pytest

import lockdep
from tests.conftest import run_in_thread


def test_context_manager_and_lock_unlock() -> None:
    m = lockdep.Mutex("m")
    with m:
        assert m.is_locked() and m.is_locked_by_me()
        assert [h.name for h in lockdep.held_locks()] == ["m"]
    m.lock()
    assert run_in_thread(m.is_locked_by_me) is False
    m.unlock()
    assert not m.is_locked()


def test_held_lock_records_the_acquisition_site() -> None:
    m = lockdep.Mutex("m")
    with m:
        (held,) = lockdep.held_locks()
    assert held.site.file == __file__
    assert held.site.function == "test_held_lock_records_the_acquisition_site"
    assert held.mode == "write" and not held.trylock and held.stack is None


def test_trylock_adds_no_edge_into_its_class_but_edges_out_of_it() -> None:
    a, b, c = lockdep.Mutex("A"), lockdep.Mutex("B"), lockdep.Mutex("C")
    with a:
        assert b.try_lock()
        assert lockdep.held_locks()[1].trylock
        with c:
            pass
        b.unlock()
    edges = {(e["from"], e["to"]) for e in lockdep.graph()["edges"]}
    assert edges == {("A", "C"), ("B", "C")}
    # B then A is fine: no A -> B edge was learned from the trylock.
    with b, a:
        pass


def test_trylock_of_a_held_class_is_not_checked() -> None:
    a1, a2 = lockdep.Mutex("A"), lockdep.Mutex("A")
    with a1:
        assert a2.try_lock()
        a2.unlock()
        assert not a1.try_lock()  # held: fails, as threading.Lock would


def test_acquire_is_threading_compatible() -> None:
    m = lockdep.Mutex("m")
    assert m.acquire() is True
    holder_result = run_in_thread(lambda: m.acquire(timeout=0.01))
    assert holder_result is False
    assert run_in_thread(lambda: m.acquire(blocking=False)) is False
    m.release()
    assert m.acquire(False) is True
    m.release()


def test_acquire_with_timeout_is_checked_for_order() -> None:
    a, b = lockdep.Mutex("A"), lockdep.Mutex("B")
    with a, b:
        pass
    with b, pytest.raises(lockdep.LockOrderError):
        a.acquire(timeout=5)


def test_acquire_argument_errors_match_threading() -> None:
    m = lockdep.Mutex("m")
    with pytest.raises(ValueError, match="non-blocking"):
        m.acquire(False, 1)
    with pytest.raises(ValueError, match="non-negative"):
        m.acquire(True, -5)
    with pytest.raises(TypeError, match="timeout must be a number"):
        m.acquire(True, "soon")  # type: ignore[arg-type]
    assert not m.is_locked()


@pytest.mark.parametrize(
    ("args", "error", "text"),
    [
        ((None,), TypeError, "non-empty str"),
        (("",), ValueError, "non-empty str"),
        (("m", "yes"), TypeError, "recursive must be True or False"),
        (("m", False, 1), TypeError, "lockdep must be True or False"),
        (("m", False, True, None), TypeError, "backtrace must be True or False"),
    ],
)
def test_bad_constructor_arguments(args: tuple[object, ...], error: type, text: str) -> None:
    with pytest.raises(error, match=text):
        lockdep.Mutex(*args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("subclass", "error"), [(9, ValueError), (-1, ValueError), ("1", TypeError)]
)
def test_bad_subclass(subclass: object, error: type) -> None:
    m = lockdep.Mutex("m")
    with pytest.raises(error, match="subclass must be an int from 0 to 7"):
        m.lock(subclass=subclass)  # type: ignore[arg-type]
    with pytest.raises(error, match="subclass must be an int from 0 to 7"):
        m.nested(subclass)  # type: ignore[arg-type]
    assert not m.is_locked()


def test_untracked_instance_is_never_checked() -> None:
    a, b = lockdep.Mutex("A"), lockdep.Mutex("B", lockdep=False)
    with a, b:
        assert [h.name for h in lockdep.held_locks()] == ["A"]
    with b, a:
        pass
    assert lockdep.graph()["edges"] == []


def test_backtrace_instance_records_stacks() -> None:
    a, b = lockdep.Mutex("A", backtrace=True), lockdep.Mutex("B")
    with a, b:
        stack = lockdep.held_locks()[0].stack
    assert stack is not None and any("test_backtrace_instance_records_stacks" in f for f in stack)
    (edge,) = lockdep.graph()["edges"]
    assert edge["from_stack"] is not None


def test_recursive_mutex_counts_and_releases_fully() -> None:
    r = lockdep.Mutex("R", recursive=True)
    r.lock()
    r.lock()
    r.unlock()
    assert r.is_locked_by_me()
    assert run_in_thread(lambda: r.acquire(blocking=False)) is False
    r.unlock()
    assert run_in_thread(lambda: (r.acquire(blocking=False), r.release())[0]) is True


def test_out_of_order_release_keeps_the_cache_correct() -> None:
    a, b, c, d = (lockdep.Mutex(n) for n in "ABCD")
    for _ in range(3):  # the second and third rounds run on cached chains
        a.lock()
        b.lock()
        c.lock()
        b.unlock()  # out of order: the chain above B is rebuilt
        d.lock()
        assert [h.name for h in lockdep.held_locks()] == ["A", "C", "D"]
        d.unlock()
        c.unlock()
        a.unlock()
    edges = {(e["from"], e["to"]) for e in lockdep.graph()["edges"]}
    assert edges == {("A", "B"), ("A", "C"), ("B", "C"), ("A", "D"), ("C", "D")}
    with d, pytest.raises(lockdep.LockOrderError):
        c.lock()


def test_close_releases_the_class_reference() -> None:
    m = lockdep.Mutex("closing")
    (cls,) = [c for c in lockdep.graph()["classes"] if c["name"] == "closing"]
    assert cls["references"] == 1
    m.lock()
    with pytest.raises(RuntimeError, match="while it is locked"):
        m.close()
    m.unlock()
    m.close()
    (cls,) = [c for c in lockdep.graph()["classes"] if c["name"] == "closing"]
    assert cls["references"] == 0
    with m:  # still usable, untracked
        assert lockdep.held_locks() == []


def test_collected_mutex_drops_its_reference() -> None:
    m = lockdep.Mutex("short-lived")
    del m
    gc.collect()
    (cls,) = [c for c in lockdep.graph()["classes"] if c["name"] == "short-lived"]
    assert cls["references"] == 0


def test_repr_shows_name_and_state() -> None:
    m = lockdep.Mutex("shown")
    assert "'shown' unlocked" in repr(m)
    with m:
        assert "'shown' locked" in repr(m)
    assert "recursive" in repr(lockdep.Mutex("r", recursive=True))


@pytest.mark.slow
def test_many_threads_contending_one_mutex() -> None:
    m = lockdep.Mutex("counter")
    count = [0]

    def work() -> None:
        for _ in range(2000):
            with m:
                count[0] += 1

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    assert count[0] == 16000


def test_lazily_imported_public_names_are_the_modules_own() -> None:
    import lockdep.cond
    import lockdep.persist
    import lockdep.shared_mutex

    assert lockdep.Cond is lockdep.cond.Cond
    assert lockdep.SharedMutex is lockdep.shared_mutex.SharedMutex
    assert lockdep.save is lockdep.persist.save
    assert set(lockdep.__all__) <= set(dir(lockdep))
    namespace: dict[str, object] = {}
    exec("from lockdep import *", namespace)
    assert set(lockdep.__all__) <= set(namespace)
    with pytest.raises(AttributeError, match="no attribute 'Nothing'"):
        lockdep.Nothing  # type: ignore[attr-defined]  # noqa: B018
