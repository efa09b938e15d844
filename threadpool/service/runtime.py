"""The pools and queues a configuration describes: built, changed live, stopped.

``Runtime.apply(pool_configs, drain_timeout)`` makes the running pools match
the configuration, changing what can change in place:

* a pool's size: ``threads``, or the limits of an elastic pool
  (``min_threads``, ``max_threads``, ``idle_timeout``), which the pool itself
  follows (``ThreadPool.set_elastic``; a pool switches between fixed and
  elastic too);
* a queue's ``timeout``, ``suicide_timeout``, ``batch_size``, its bound
  (``max_items``, ``policy``, ``block_timeout``, ``on_drop``), the value of
  its ``deadline`` and its ``on_expire``;
* pools and queues added: built and started;
* pools and queues removed: they stop taking items (``submit`` refuses them),
  are drained for up to ``drain_timeout`` seconds, then detached; the items
  still queued are logged by count, never dropped silently.

A queue that cannot be detached (a pointer queue whose item is still
processing after the drain deadline) stays attached, taking no new items, in
its pool's ``detaching`` set; ``apply`` reports it (``ApplyError``). Every
later ``apply`` and every ``retry_detach`` tries to detach it again, and once it
is gone the configuration the pool follows is applied again, so that a queue
replaced meanwhile appears without another reload. Wanted back unchanged
while still attached, it is simply published again.

What cannot change in place replaces the object: a queue whose kind,
handler, finish, histograms, shards or key change, or that gets a deadline or
loses it (a queue takes deadlines or not from birth), is removed (drained, as
above) and added anew, and the log says which key did it; so is a pool whose
``thread_name`` changes.

``stop(drain_timeout)`` does the same removal for everything at once, the
way the service shuts down: each pool is stopped with ``ThreadPool.stop(
clear_after=True, timeout=...)`` within ``STOP_GRACE`` seconds past the drain
deadline, so a handler stuck for ever cannot hold the shutdown; the workers
still stuck are logged by name (with their queue) and their items counted
among those left.

Only one thread (the service's control thread) may call ``apply``,
``retry_detach`` and ``stop``; ``submit``, ``queued`` and the readers may be
called from anywhere: they read dictionaries that the control thread replaces
whole, never mutates.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from time import monotonic
from typing import Any, NamedTuple

from threadpool import (
    BaseWorkQueue,
    CallQueue,
    Executor,
    HeartbeatMap,
    ShardedWorkQueue,
    StopResult,
    ThreadPool,
)

from .config import PoolConfig, QueueConfig
from .queues import AnyQueue, build_queue, change_queue, changes, replaced_by

logger = logging.getLogger("threadpool.service")

STOP_GRACE = 2.0  # seconds a pool may take to stop once drained, beyond the drain deadline


@dataclass
class LivePool:
    """A running pool, the configuration it follows and its queues by name."""

    config: PoolConfig
    pool: ThreadPool
    queues: dict[str, tuple[AnyQueue, QueueConfig]] = field(default_factory=dict)
    # The executors of its calls queues, by queue name (made when published).
    executors: dict[str, Executor] = field(default_factory=dict)
    # Removed from the configuration but still attached (an item still processing):
    # published nowhere, retried by every apply and retry_detach.
    detaching: dict[str, tuple[AnyQueue, QueueConfig]] = field(default_factory=dict)


class Inlet(NamedTuple):
    """What ``submit`` and ``executor`` find for a published queue."""

    queue: AnyQueue
    config: QueueConfig
    executor: Executor | None  # a queue of calls: its executor


class ApplyError(Exception):
    """Part of a configuration could not be applied (a queue that would not detach)."""


class Runtime:
    """The service's pools; see the module docstring."""

    def __init__(self, heartbeat_map: HeartbeatMap) -> None:
        self.heartbeat_map = heartbeat_map
        self._pools: dict[str, LivePool] = {}
        self._inlets: dict[tuple[str, str], Inlet] = {}

    # --- readers (any thread) --------------------------------------------------------

    def pools(self) -> list[ThreadPool]:
        return [live.pool for live in self._pools.values()]

    def live(self, name: str) -> LivePool | None:
        return self._pools.get(name)

    def submit(
        self,
        pool: str,
        queue: str,
        item: Any,
        *,
        key: Hashable = None,
        deadline: float | None = None,
    ) -> bool:
        """Queue ``item`` to ``pool``/``queue``; False, with the item not taken, when
        there is no such queue (or it was removed while the item went in).

        A full bounded queue applies its policy: ``QueueFull`` (reject, or block past
        its timeout) reaches the caller; under caller_runs the caller runs the item
        (True: it was taken). ``deadline`` (seconds) overrides the queue's own; a
        queue configured without one takes none (TypeError). A sharded queue takes
        ``key``, or finds it with its configured ``key`` function (TypeError when it
        has none); other queues take no key (TypeError)."""
        entry = self._inlets.get((pool, queue))
        if entry is None:
            return False
        q, qc, _executor = entry
        if isinstance(q, CallQueue):
            raise TypeError(
                f"{pool}/{queue} is a queue of calls: submit to it through its executor, "
                f"ctx.executor({pool!r}, {queue!r})"
            )
        if isinstance(q, ShardedWorkQueue):
            if deadline is not None:
                raise TypeError(f"{pool}/{queue} is a sharded queue: its items take no deadline")
            if key is None:
                if qc.key is None:
                    raise TypeError(
                        f"{pool}/{queue} is a sharded queue with no key function configured: "
                        "submit its items with key=..."
                    )
                q.queue_item(item)
            else:
                q.queue(key, item)
        elif key is not None:
            raise TypeError(f"{pool}/{queue} is a {q.kind} queue: only sharded queues take a key")
        elif deadline is not None and qc.deadline is None:
            raise TypeError(
                f"{pool}/{queue} takes no deadlines: give the queue a deadline in the "
                "configuration (its default) to submit items with one"
            )
        else:
            q.queue(item, deadline=deadline)
        if q.pool is None:
            # Removed between the look-up and the queue(): whatever is still in it now is
            # ours to report (the remover reports what it found, each item once).
            left = q.clear()
            if left:
                logger.warning(
                    "%s/%s: %d items queued while the queue was being removed; not processed",
                    pool,
                    queue,
                    len(left),
                )
            return False
        return True

    def queued(self, pool: str, queue: str) -> int | None:
        entry = self._inlets.get((pool, queue))
        if entry is None:
            return None
        items: int | None = entry.queue.stats()["items"]
        return items

    def executor(self, pool: str, queue: str) -> Executor:
        """The executor of ``pool``/``queue``, a queue of kind ``calls``: its calls run on
        the pool's workers, with their heartbeats, timeouts and counters. LookupError
        when there is no such queue or it is not a queue of calls. Once a reload removes
        or replaces the queue, it refuses new calls (RuntimeError): ask again."""
        entry = self._inlets.get((pool, queue))
        if entry is None:
            raise LookupError(f"no queue {pool}/{queue} (in the running configuration)")
        if entry.executor is None:
            raise LookupError(
                f"{pool}/{queue} is a {entry.config.kind} queue, not a queue of calls "
                "(kind calls): it has no executor"
            )
        return entry.executor

    # --- changes (the control thread) ---------------------------------------------------

    def apply(self, wanted: Sequence[PoolConfig], drain_timeout: float) -> None:
        """Make the pools match ``wanted``; ApplyError lists what could not be done
        (the rest is done)."""
        deadline = monotonic() + drain_timeout
        by_name = {pc.name: pc for pc in wanted}
        errors: list[str] = []
        for name, live in list(self._pools.items()):
            pc = by_name.get(name)
            if pc is None:
                self._retire_pools([live], deadline, "removed")
            elif _thread_name(pc) != _thread_name(live.config):
                self._retire_pools([live], deadline, "replaced (its thread_name changed)")
        for pc in wanted:
            current = self._pools.get(pc.name)
            if current is None:
                self._start_pool(pc)
            else:
                errors += self._update_pool(current, pc, deadline)
        if errors:
            raise ApplyError("; ".join(errors))

    def retry_detach(self) -> None:
        """Another try at detaching the queues that would not detach; where one did, the
        configuration its pool follows is applied again (a replacement appears)."""
        for live in self._pools.values():
            if live.detaching and self._detach_stuck(live):
                errors = self._update_pool(live, live.config, monotonic())
                for error in errors:
                    logger.error("%s", error)

    def stop(self, drain_timeout: float) -> dict[str, int]:
        """Stop taking items, drain every pool for up to ``drain_timeout`` seconds,
        stop them all; returns (and logs) the items left, by ``pool/queue``."""
        return self._retire_pools(
            list(self._pools.values()), monotonic() + drain_timeout, "stopping"
        )

    # --- pools ------------------------------------------------------------------------

    def _start_pool(self, pc: PoolConfig) -> None:
        sizing: dict[str, Any] = {}
        if pc.elastic:
            sizing = {
                "min_threads": pc.min_threads,
                "max_threads": pc.max_threads,
                "idle_timeout": pc.idle_timeout,
            }
        pool = ThreadPool(
            pc.name,
            pc.initial_threads,
            thread_name=pc.thread_name,
            heartbeat_map=self.heartbeat_map,
            **sizing,
        )
        live = LivePool(pc, pool)
        for qc in pc.queues:
            q = build_queue(qc)
            pool.add_work_queue(q)
            live.queues[qc.name] = (q, qc)
        pool.start()
        self._pools = {**self._pools, pc.name: live}
        self._publish(live, live.queues)
        kinds = ", ".join(f"{name} ({qc.kind})" for name, (_q, qc) in live.queues.items())
        logger.info("pool %s: started, %d threads; queues: %s", pc.name, pool.num_threads, kinds)

    def _update_pool(self, live: LivePool, pc: PoolConfig, deadline: float) -> list[str]:
        pool = live.pool
        _size(pool, pc)
        errors = []
        wanted = {qc.name: qc for qc in pc.queues}
        self._detach_stuck(live)
        for name, (_q, old) in list(live.queues.items()):
            new = wanted.get(name)
            if new is None or new.identity() != old.identity():
                why = "removed" if new is None else f"replaced ({replaced_by(old, new)})"
                error = self._retire_queue(live, name, deadline, why)
                if error:
                    errors.append(error)
        added = {}
        for qc in pc.queues:
            entry = live.queues.get(qc.name)
            stuck = live.detaching.get(qc.name)
            if entry is None and stuck is not None:
                if stuck[1].identity() != qc.identity():
                    errors.append(
                        f"{pc.name}/{qc.name}: the queue it replaces still has items "
                        "processing; it is added once that one detaches"
                    )
                    continue
                entry = live.queues[qc.name] = added[qc.name] = live.detaching.pop(qc.name)
                logger.info("%s/%s: back, as it was (it had not detached yet)", pc.name, qc.name)
            if entry is None:
                q = build_queue(qc)
                try:
                    pool.add_work_queue(q)
                except ValueError as exc:
                    errors.append(str(exc))
                    continue
                live.queues[qc.name] = added[qc.name] = (q, qc)
                logger.info("%s/%s: added (%s)", pc.name, qc.name, qc.kind)
            elif entry[1] != qc:
                q = entry[0]
                change_queue(q, qc)
                live.queues[qc.name] = added[qc.name] = (q, qc)  # published with its settings
                logger.info("%s/%s: %s", pc.name, qc.name, changes(entry[1], qc))
        live.config = pc
        self._publish(live, added)
        return errors

    def _retire_queue(self, live: LivePool, name: str, deadline: float, why: str) -> str | None:
        """Unpublish, drain until ``deadline``, detach; an error message if the queue
        would not detach (it then waits in ``live.detaching``)."""
        q, _qc = entry = live.queues.pop(name)
        where = f"{live.config.name}/{name}"
        self._unpublish([(live.config.name, name)])
        executor = live.executors.pop(name, None)
        if executor is not None:
            executor.shutdown(wait=False)  # its holders' new calls are refused
        drained = _drain(live.pool, q, deadline)
        if executor is not None:
            _cancel_left(where, executor)
        try:
            live.pool.remove_work_queue(q)
        except RuntimeError as exc:
            live.detaching[name] = entry
            logger.error("%s: %s; it stays attached, taking no new items", where, exc)
            return f"{where} could not be removed: {exc}"
        self._report_left(where, q, why, drained)
        return None

    def _detach_stuck(self, live: LivePool) -> bool:
        """Try again to detach the queues that would not; whether any did."""
        detached = False
        for name, (q, _qc) in list(live.detaching.items()):
            try:
                live.pool.remove_work_queue(q)
            except RuntimeError:
                continue  # still processing
            del live.detaching[name]
            detached = True
            self._report_left(f"{live.config.name}/{name}", q, "detached at last", True)
        return detached

    def _report_left(self, where: str, q: AnyQueue, why: str, drained: bool) -> None:
        left = q.clear()
        if left:
            logger.warning(
                "%s: %s with %d items unprocessed after the drain deadline", where, why, len(left)
            )
        else:
            logger.info("%s: %s%s", where, why, "" if drained else " (items still in flight)")

    def _retire_pools(self, lives: list[LivePool], deadline: float, why: str) -> dict[str, int]:
        """Unpublish, drain until ``deadline``, then stop the pools, in parallel, each
        within ``STOP_GRACE`` seconds past the deadline (``ThreadPool.stop``'s timeout):
        a worker stuck in a handler is named and left behind, never waited for."""
        self._unpublish([(live.config.name, name) for live in lives for name in live.queues])
        for live in lives:
            for executor in live.executors.values():
                executor.shutdown(wait=False)  # its holders' new calls are refused
        left: dict[str, int] = {}
        for live in lives:
            _drain(live.pool, None, deadline)
            for name, executor in live.executors.items():
                where = f"{live.config.name}/{name}"
                cancelled = _cancel_left(where, executor)
                if cancelled:
                    left[where] = cancelled
            live.executors.clear()
        end = max(deadline, monotonic()) + STOP_GRACE  # one grace for all, not one each
        stoppers = []
        for live in lives:
            result: list[StopResult] = []
            thread = threading.Thread(
                target=_stop_by, args=(live.pool, end, result), name=f"stopping {live.config.name}"
            )
            thread.start()
            stoppers.append((live, thread, result))
        for live, thread, result in stoppers:
            thread.join()  # bounded: stop() returns by ``end``, stuck workers or not
            name = live.config.name
            stopped = result[0] if result else StopResult({}, ["(stop() failed, see above)"])
            for queue, items in stopped.items():
                left[f"{name}/{queue}"] = len(items)
            if stopped.stuck:
                # Their units are still theirs: count them as left behind, by queue.
                for queue, qs in live.pool.stats()["queues"].items():
                    if qs["in_flight"]:
                        where = f"{name}/{queue}"
                        left[where] = left.get(where, 0) + qs["in_flight"]
                logger.error(
                    "pool %s: %s; %d workers still stuck in a handler %gs past the drain "
                    "deadline, left behind: %s",
                    name,
                    why,
                    len(stopped.stuck),
                    STOP_GRACE,
                    ", ".join(stopped.stuck),
                )
            else:
                logger.info("pool %s: %s", name, why)
            remaining = dict(self._pools)
            remaining.pop(name, None)
            self._pools = remaining
        if left:
            logger.warning(
                "%d items left unprocessed after the drain deadline: %s",
                sum(left.values()),
                ", ".join(f"{where}: {n}" for where, n in left.items()),
            )
        return left

    # --- what submit() sees ----------------------------------------------------------

    def _publish(self, live: LivePool, queues: dict[str, tuple[AnyQueue, QueueConfig]]) -> None:
        inlets = dict(self._inlets)
        for name, (q, qc) in queues.items():
            executor = None
            if isinstance(q, CallQueue):
                executor = live.executors.get(name)
                if executor is None:
                    executor = live.executors[name] = live.pool.executor(q)
            inlets[(live.config.name, name)] = Inlet(q, qc, executor)
        self._inlets = inlets

    def _unpublish(self, keys: Iterable[tuple[str, str]]) -> None:
        inlets = dict(self._inlets)
        for key in keys:
            inlets.pop(key, None)
        self._inlets = inlets


def _size(pool: ThreadPool, pc: PoolConfig) -> None:
    """Give ``pool`` the sizing ``pc`` asks for, if it has another (the pool logs it)."""
    if pc.elastic:
        assert pc.min_threads is not None and pc.max_threads is not None
        wanted = (pc.min_threads, pc.max_threads, pc.idle_timeout)
        if (pool.min_threads, pool.max_threads, pool.idle_timeout) != wanted:
            pool.set_elastic(*wanted)
    else:
        assert pc.threads is not None
        if pool.elastic or pool.num_threads != pc.threads:
            pool.set_num_threads(pc.threads)


def _thread_name(pc: PoolConfig) -> str:
    return pc.thread_name or pc.name


def _drain(pool: ThreadPool, queue: BaseWorkQueue | None, deadline: float) -> bool:
    """Drain until ``deadline``; False if work remains (or nothing could process it)."""
    try:
        return pool.drain(queue, timeout=max(deadline - monotonic(), 0.0))
    except RuntimeError:  # paused, or no threads: nothing will drain it
        return False


def _cancel_left(where: str, executor: Executor) -> int:
    """Cancel the calls of a retired executor that no worker started by the drain
    deadline (their futures say so); how many."""
    count = executor.queue.size() or 0
    executor.shutdown(wait=False, cancel_futures=True)
    if count:
        logger.warning("%s: %d calls not started by the drain deadline, cancelled", where, count)
    return count


def _stop_by(pool: ThreadPool, end: float, out: list[StopResult]) -> None:
    """``pool.stop()`` with the queued items cleared, returning by ``end`` (monotonic)."""
    try:
        out.append(pool.stop(clear_after=True, timeout=max(end - monotonic(), 0.0)))
    except Exception:  # a bug; the other pools must still stop
        logger.exception("pool %s: stop() failed", pool.name)
