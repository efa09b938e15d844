"""The order among instances of one class (SPEC 3.3): per-object locks, lock arrays,
transfer(a, b)."""

from __future__ import annotations

import gc
import itertools
import threading

import pytest

import lockdep
from tests.conftest import run_in_thread


class Account:
    def __init__(self, name: str, balance: int) -> None:
        self.name = name
        self.balance = balance
        self.lock = lockdep.Mutex("account", instance_order=True)


def transfer(source: Account, target: Account, amount: int) -> None:
    with source.lock:
        with target.lock:
            source.balance -= amount
            target.balance += amount


def test_opposite_transfers_are_an_order_violation_between_instances() -> None:
    alice, bob = Account("alice", 100), Account("bob", 100)
    run_in_thread(lambda: transfer(alice, bob, 10))
    with pytest.raises(lockdep.LockOrderError) as raised:
        transfer(bob, alice, 5)
    violation = raised.value.violation
    assert violation.instances and violation.classes == ("account",)
    report = violation.report
    assert "instances of one class" in report and "account" in report
    assert f"{__file__}:" in report and "in transfer" in report
    assert not alice.lock.is_locked() and not bob.lock.is_locked()


def test_a_consistent_order_by_id_is_never_reported() -> None:
    accounts = [Account(str(i), 100) for i in range(6)]

    def ordered_transfer(a: Account, b: Account) -> None:
        first, second = sorted((a, b), key=id)
        with first.lock, second.lock:
            a.balance -= 1
            b.balance += 1

    for a in accounts:
        for b in accounts:
            if a is not b:
                ordered_transfer(a, b)
    assert lockdep.stats()["violations"] == 0


def test_a_plain_mutex_keeps_linux_rule() -> None:
    a, b = lockdep.Mutex("account"), lockdep.Mutex("account")
    with a, pytest.raises(lockdep.RecursiveLockError):
        b.lock()
    with a, b.nested(1):  # a subclass says the nesting is intended
        pass


def test_an_instance_taken_again_below_another_instance_is_a_self_deadlock() -> None:
    first, second = (lockdep.Mutex("slot", instance_order=True) for _ in range(2))
    with first, second:
        with pytest.raises(lockdep.RecursiveLockError) as raised:
            first.lock()
    assert "the same lock" in raised.value.violation.report


def test_a_recursive_lock_reentered_below_another_instance_is_a_reentry() -> None:
    outer, inner = (lockdep.Mutex("node", recursive=True, instance_order=True) for _ in range(2))
    with outer, inner, outer:  # outer again: a re-entry, whatever is on top
        assert [h.reentry for h in lockdep.held_locks()] == [False, False, True]
    assert lockdep.stats()["violations"] == 0
    with inner, pytest.raises(lockdep.LockOrderError):
        outer.lock()  # the opposite order: a cycle between the two instances


def test_a_trylock_does_not_break_the_chain_of_instances_below_it() -> None:
    a, b, c = (lockdep.Mutex("slot", instance_order=True) for _ in range(3))
    with a:
        assert b.try_lock()  # no edge into b: b cannot deadlock
        with c:  # edges into c from b and, below the trylock, from a
            pass
        b.unlock()
    with c, pytest.raises(lockdep.LockOrderError):
        a.lock()


def test_many_instances_held_at_once_first_in_first_out() -> None:
    locks = [lockdep.Mutex("future", instance_order=True) for _ in range(2000)]
    for _ in range(2):
        for lock in sorted(locks, key=id):
            lock.lock()
        assert len(lockdep.held_locks()) == 2000
        for lock in sorted(locks, key=id):  # released first in, first out
            lock.unlock()
        assert lockdep.held_locks() == []
    assert lockdep.stats()["violations"] == 0
    assert lockdep.stats()["instance_edges"] >= 1999


def test_instance_nodes_go_with_their_locks() -> None:
    locks = [lockdep.Mutex("temp", instance_order=True) for _ in range(50)]
    for first, second in itertools.pairwise(locks):
        with first, second:
            pass
    assert lockdep.stats()["instances"] == 50
    del locks, first, second
    gc.collect()
    with lockdep.Mutex("other"):  # deferred work runs when lockdep's mutex is next free
        pass
    assert lockdep.stats()["instances"] == 0


def test_opposite_orders_under_one_guard_are_no_violation() -> None:
    bank = lockdep.Mutex("bank")
    alice, bob = Account("alice", 100), Account("bob", 100)
    with bank:
        transfer(alice, bob, 1)
    with bank:
        transfer(bob, alice, 1)
    assert lockdep.stats()["violations"] == 0
    # Without the guard, the same inversion can deadlock against the guarded one.
    with pytest.raises(lockdep.LockOrderError):
        transfer(alice, bob, 1)


def test_instance_order_is_per_task_thread_not_global() -> None:
    a, b = (lockdep.Mutex("pair", instance_order=True) for _ in range(2))
    ready, go = threading.Event(), threading.Event()

    def hold_b() -> None:
        with b:
            ready.set()
            go.wait(10)

    holder = threading.Thread(target=hold_b)
    holder.start()
    try:
        assert ready.wait(10)
        with a:  # another thread holds b: no edge between a and b from that
            pass
    finally:
        go.set()
        holder.join(10)
    assert lockdep.stats()["instance_edges"] == 0
