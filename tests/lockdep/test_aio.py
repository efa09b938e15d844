"""asyncio.Lock under install(): held stacks per task."""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import textwrap
import weakref

import pytest

import lockdep
from lockdep import aio
from lockdep.aio import TrackedAsyncLock
from lockdep.held import CODE, LOCK

pytestmark = pytest.mark.usefixtures("installed")


def test_abba_between_two_coroutines_is_reported() -> None:
    async def main() -> BaseException | None:
        a = asyncio.Lock()
        b = asyncio.Lock()
        assert isinstance(a, TrackedAsyncLock)

        async def forward() -> None:
            async with a, b:
                await asyncio.sleep(0)

        async def backward() -> None:
            async with b, a:
                await asyncio.sleep(0)

        await asyncio.create_task(forward())
        try:
            await asyncio.create_task(backward())
        except lockdep.LockOrderError as exc:
            return exc
        return None

    error = asyncio.run(main())
    assert isinstance(error, lockdep.LockOrderError)
    assert "backward" in error.violation.report and "forward" in error.violation.report


def test_interleaved_tasks_have_their_own_stacks() -> None:
    """Two tasks each hold their own lock at once: no false edge between them."""

    async def main() -> None:
        a = asyncio.Lock()
        b = asyncio.Lock()
        both_hold = asyncio.Event()
        holding = [0]

        async def hold(lock: asyncio.Lock) -> None:
            async with lock:
                holding[0] += 1
                if holding[0] == 2:
                    both_hold.set()
                await both_hold.wait()

        await asyncio.gather(hold(a), hold(b))
        async with b, a:  # fine: nothing ordered a before b
            pass

    asyncio.run(main())
    assert lockdep.stats()["violations"] == 0


def test_lock_released_by_another_task() -> None:
    async def main() -> None:
        lock = asyncio.Lock()
        await lock.acquire()

        async def release() -> None:
            lock.release()

        await asyncio.create_task(release())
        assert not lock.locked()
        async with lock:
            pass

    asyncio.run(main())


def test_condition_with_tracked_lock() -> None:
    async def main() -> int:
        cond = asyncio.Condition()
        items: list[int] = []

        async def produce() -> None:
            async with cond:
                items.append(1)
                cond.notify()

        async with cond:
            task = asyncio.create_task(produce())
            await cond.wait_for(lambda: items)
        await task
        return len(items)

    assert asyncio.run(main()) == 1
    assert lockdep.stats()["violations"] == 0


@pytest.mark.slow
def test_asyncio_imported_after_install_is_tracked() -> None:
    program = textwrap.dedent(
        """
        import sys
        import lockdep
        assert "asyncio" not in sys.modules
        lockdep.install()
        import asyncio
        from lockdep.aio import TrackedAsyncLock
        assert isinstance(asyncio.Lock(), TrackedAsyncLock), asyncio.Lock
        lockdep.uninstall()
        assert not isinstance(asyncio.Lock(), TrackedAsyncLock)
        print("ok")
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_tracked_lock_reads_as_asyncio_lock_in_type_errors() -> None:
    async def main() -> str:
        lock = asyncio.Lock()
        assert isinstance(lock, TrackedAsyncLock)
        try:
            await lock  # type: ignore[misc]
        except TypeError as exc:
            return str(exc)
        return "no error"

    assert asyncio.run(main()) == "object Lock can't be used in 'await' expression"


def test_a_cached_acquisition_records_what_the_checked_one_did() -> None:
    """The second time round both acquisitions hit the chain cache: the same entries
    (chain node, site) are pushed, and the order learned still holds."""

    async def main() -> list[list[tuple[object, ...]]]:
        a, b = asyncio.Lock(), asyncio.Lock()
        seen: list[list[tuple[object, ...]]] = []

        async def nest() -> None:
            async with a, b:
                seen.append(list(aio._task_held()[1:]))  # the task's stack, past its sentinel
                await asyncio.sleep(0)

        for _ in range(3):
            await asyncio.create_task(nest())

        async def backward() -> None:
            async with b, a:
                pass

        with pytest.raises(lockdep.LockOrderError):
            await asyncio.create_task(backward())
        return seen

    seen = asyncio.run(main())
    assert len(seen) == 3 and seen[0] == seen[1] == seen[2]
    assert [entry[CODE].co_name for entry in seen[0]] == ["nest", "nest"]


def _stack_of(task: asyncio.Task[object]) -> list[object] | None:
    """The locks on task's held stack, past its sentinel; None when it has no stack."""
    held = aio._stacks.get(weakref.ref(task))
    return None if held is None else [entry[LOCK] for entry in held[1:]]


def test_tasks_that_let_go_of_their_locks_leave_no_stack_behind() -> None:
    async def main() -> None:
        lock = asyncio.Lock()
        other = asyncio.Lock()

        async def work() -> None:
            async with lock:
                await asyncio.sleep(0)
            async with other:
                pass

        tasks = [asyncio.create_task(work()) for _ in range(50)]
        await asyncio.gather(*tasks)
        assert [t for t in tasks if _stack_of(t) is not None] == []

    asyncio.run(main())


def test_a_task_keeps_its_stack_while_it_holds_a_lock() -> None:
    async def main() -> None:
        a, b = asyncio.Lock(), asyncio.Lock()
        holding = asyncio.Event()
        done = asyncio.Event()

        async def hold() -> None:
            async with a:
                await b.acquire()
                holding.set()
                await done.wait()
            assert _stack_of(task) == [None, b]  # a let go below b: a tombstone
            b.release()
            assert _stack_of(task) is None

        task = asyncio.create_task(hold())
        await holding.wait()
        assert _stack_of(task) == [a, b]
        done.set()
        await task

    asyncio.run(main())


def test_release_on_a_tasks_behalf_takes_its_stack_away() -> None:
    async def main() -> None:
        lock = asyncio.Lock()
        taken = asyncio.Event()
        released = asyncio.Event()
        inner = asyncio.Lock()

        async def holder() -> None:
            await lock.acquire()
            taken.set()
            await released.wait()
            assert _stack_of(task) is None  # released by main on its behalf
            async with inner:  # a new stack: nothing held below inner
                assert _stack_of(task) == [inner]

        task = asyncio.create_task(holder())
        await taken.wait()
        lock.release()
        released.set()
        await task

    asyncio.run(main())
    assert lockdep.stats()["violations"] == 0


def test_the_stack_of_a_task_that_ends_holding_a_lock_goes_with_the_task() -> None:
    async def main() -> None:
        lock = asyncio.Lock()

        async def keep() -> None:
            await lock.acquire()

        task: asyncio.Task[None] | None = asyncio.create_task(keep())
        await task
        assert task is not None and _stack_of(task) == [lock]
        ref = weakref.ref(task)
        task = None
        await asyncio.sleep(0)  # the loop lets go of it too
        gc.collect()
        assert ref() is None
        assert not any(entry[LOCK] is lock for held in aio._stacks.values() for entry in held)
        lock.release()  # by another: the holder's stack is gone with it
        assert not lock.locked()

    asyncio.run(main())


def test_async_with_and_acquire_push_the_same_entry() -> None:
    async def main() -> list[tuple[object, ...]]:
        outer, lock = asyncio.Lock(), asyncio.Lock()
        seen: list[tuple[object, ...]] = []
        for _ in range(2):  # checked, then from the chain cache
            async with outer:
                async with lock:
                    seen.append(aio._task_held()[-1])
                await lock.acquire()
                seen.append(aio._task_held()[-1])
                lock.release()
        return seen

    seen = asyncio.run(main())
    first = seen[0]
    # The same lock, key and chain node, each time and both ways; the site is main's.
    assert all(e[0] is first[0] and e[1] == first[1] and e[2] is first[2] for e in seen)
    assert {getattr(entry[CODE], "co_name", None) for entry in seen} == {"main"}


def test_a_task_cancelled_while_it_waits_in_async_with_pushes_nothing() -> None:
    async def main() -> None:
        lock = asyncio.Lock()
        await lock.acquire()
        entered = asyncio.Event()

        async def waiter() -> None:
            entered.set()
            async with lock:
                pass

        task = asyncio.create_task(waiter())
        await entered.wait()
        await asyncio.sleep(0)  # the waiter now waits for the lock
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert _stack_of(task) is None
        lock.release()
        async with lock:
            assert [entry[LOCK] for entry in aio._task_held()[1:]] == [lock]

    asyncio.run(main())


def test_async_with_calls_a_subclasss_own_acquire() -> None:
    calls: list[str] = []

    class Counting(asyncio.Lock):
        async def acquire(self) -> bool:  # type: ignore[override]
            calls.append("acquire")
            return await super().acquire()

    async def main() -> None:
        lock = Counting()
        assert isinstance(lock, TrackedAsyncLock)
        async with lock:
            assert [entry[LOCK] for entry in aio._task_held()[1:]] == [lock]
        await lock.acquire()
        lock.release()

    asyncio.run(main())
    assert calls == ["acquire", "acquire"]


def test_a_class_between_ours_and_asyncios_keeps_its_acquire_and_release() -> None:
    calls: list[str] = []

    class Counting(aio._OriginalLock):  # an asyncio.Lock subclass made before install()
        async def acquire(self) -> bool:  # type: ignore[override]
            calls.append("acquire")
            return await super().acquire()

        def release(self) -> None:
            calls.append("release")
            super().release()

    class Both(asyncio.Lock, Counting):  # type: ignore[misc]
        pass

    async def main() -> None:
        lock = Both()
        assert isinstance(lock, TrackedAsyncLock)
        async with lock:
            assert [entry[LOCK] for entry in aio._task_held()[1:]] == [lock]
        await lock.acquire()
        lock.release()
        assert not lock.locked()

    asyncio.run(main())
    assert calls == ["acquire", "release", "acquire", "release"]
