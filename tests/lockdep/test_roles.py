"""The class of a lock made by code nobody annotated: its role (SPEC 3.1)."""

from __future__ import annotations

import logging
import sys
import threading
from dataclasses import dataclass, field

import pytest

import lockdep

pytestmark = pytest.mark.usefixtures("installed")
HERE = "tests/lockdep/test_roles.py"


def class_of(lock: object) -> str:
    name: str = lock.name  # type: ignore[attr-defined]
    return name


def test_two_locks_made_on_one_line_are_two_classes() -> None:
    a, b = threading.Lock(), threading.Lock()
    assert class_of(a) != class_of(b)
    assert class_of(a).startswith(f"{HERE}:") and "(column" in class_of(b)
    with a, b:
        pass
    with b, pytest.raises(lockdep.LockOrderError):
        a.acquire()


class Base:
    def __init__(self) -> None:
        self.lock = threading.Lock()


class Left(Base):
    pass


class Right(Base):
    pass


def test_a_lock_a_base_class_makes_is_one_class_per_subclass() -> None:
    left, other_left, right = Left(), Left(), Right()
    assert class_of(left.lock) == class_of(other_left.lock)
    assert class_of(left.lock) != class_of(right.lock)
    assert class_of(left.lock).endswith("for Left")
    with left.lock, right.lock:  # unrelated subclasses: no order among their instances
        pass
    with right.lock, pytest.raises(lockdep.LockOrderError):
        left.lock.acquire()


def make_lock() -> threading.Lock:
    return threading.Lock()


class Queue:
    def __init__(self) -> None:
        self.lock = make_lock()


class Store:
    def __init__(self) -> None:
        self.lock = make_lock()


def test_a_helper_gives_each_caller_its_own_class() -> None:
    queue, store, queue2 = Queue(), Store(), Queue()
    assert class_of(queue.lock) == class_of(queue2.lock)
    assert class_of(queue.lock) != class_of(store.lock)
    assert " via " in class_of(queue.lock) and "Queue" in class_of(queue.lock)


def test_a_plain_function_keeping_its_lock_is_its_own_site() -> None:
    lock = threading.Lock()
    assert class_of(lock).endswith("test_a_plain_function_keeping_its_lock_is_its_own_site")
    assert " via " not in class_of(lock)


@dataclass
class Job:
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class Worker:
    lock: threading.Lock = field(default_factory=threading.Lock)


def test_a_dataclass_default_factory_gives_each_dataclass_its_class() -> None:
    job, worker = Job(), Worker()
    assert class_of(job.lock) != class_of(worker.lock)
    assert "Job.__init__ (generated)" in class_of(job.lock)
    assert "<string>" not in class_of(job.lock)


def test_a_comprehension_belongs_to_its_function() -> None:
    forks = [threading.Lock() for _ in range(3)]
    assert len({class_of(f) for f in forks}) == 1
    name = class_of(forks[0])
    assert name.endswith("test_a_comprehension_belongs_to_its_function")
    assert "<listcomp>" not in name


class ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_every_logging_handler_type_gets_its_own_class() -> None:
    stream = logging.StreamHandler(sys.stderr)
    mine = ListHandler()
    try:
        assert class_of(stream.lock) != class_of(mine.lock)
        assert class_of(stream.lock).startswith("<stdlib>/logging/__init__.py:")
        assert class_of(stream.lock).endswith("for StreamHandler")
        assert class_of(mine.lock).endswith("for ListHandler")
    finally:
        stream.close()
        mine.close()


def test_a_type_locks_are_made_for_is_not_kept_alive() -> None:
    import gc
    import weakref

    def make_type() -> type:
        class Dynamic(Base):
            pass

        return Dynamic

    dynamic = make_type()
    instance = dynamic()
    name = class_of(instance.lock)
    assert name.endswith("make_type.<locals>.Dynamic") or name.endswith("for Dynamic")
    gone = weakref.ref(dynamic)
    del dynamic, instance
    gc.collect()
    assert gone() is None
    names = {c["name"]: c["references"] for c in lockdep.graph()["classes"]}
    assert names.get(name, 0) == 0, "the class's reference went with the type"


class CapturingBase:
    """A base class whose method keeps self in a closure: self is a cell there."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.lock = threading.Lock()
        self.again = lambda: self


class CapturingLeft(CapturingBase):
    pass


class CapturingRight(CapturingBase):
    pass


@pytest.mark.parametrize("path", lockdep.fastpath.AVAILABLE)
def test_the_class_by_type_of_self_is_the_same_on_both_paths(path: str) -> None:
    # Made many times: the C maker reads the role from roles' table once it is there,
    # also where self is a cell; the names must be what Python gives.
    before = lockdep.settings()["fast_path"]
    lockdep.configure(fast_path=path)
    try:
        made = [(CapturingLeft(), CapturingRight(), Left(), Right()) for _ in range(3)]
    finally:
        lockdep.configure(fast_path=before)
    for left, right, plain_left, plain_right in made:
        assert class_of(left.cond._lock).endswith("for CapturingLeft")
        assert class_of(right.cond._lock).endswith("for CapturingRight")
        assert class_of(left.lock).endswith("for CapturingLeft")
        assert class_of(right.lock).endswith("for CapturingRight")
        assert class_of(plain_left.lock).endswith("for Left")
        assert class_of(plain_right.lock).endswith("for Right")
    assert len({class_of(m[0].lock) for m in made}) == 1
