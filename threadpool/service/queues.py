"""A queue from its configuration: built, changed in place on reload, or replaced.

``build_queue(qc)`` makes the ready-made queue a ``QueueConfig`` describes
(``kind``: batch, value, workqueue, pointer, sharded, or calls - an
executor's ``CallQueue``), with its handlers, timeouts, bound, policy and
deadline. ``change_queue(q, qc)`` gives a running queue the settings a reload
may change in place; the others are ``qc.identity()``, and a change of them
replaces the queue (``replaced_by`` says why, ``changes`` what changed in
place, for the log). The runtime (``runtime``) decides when.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from typing import Any

from threadpool import (
    BatchWorkQueue,
    CallQueue,
    PointerWQ,
    ShardedWorkQueue,
    WorkQueue,
    WorkQueueVal,
)

from .checks import Ref
from .config import QueueConfig

AnyQueue = BatchWorkQueue | WorkQueueVal | WorkQueue | PointerWQ | ShardedWorkQueue | CallQueue


def build_queue(qc: QueueConfig) -> AnyQueue:
    """A ready-made queue of ``qc.kind`` with the configured handlers and limits."""
    limits: dict[str, Any] = {
        "timeout": qc.timeout,
        "suicide_timeout": qc.suicide_timeout,
        "histograms": qc.histograms,
    }
    if qc.kind == "calls":  # an executor's: the calls set their own drop and expiry
        return CallQueue(
            qc.name,
            max_items=qc.max_items,
            policy=qc.policy,
            block_timeout=qc.block_timeout,
            deadline=qc.deadline,
            **limits,
        )
    if qc.kind == "sharded":
        assert qc.shards is not None  # the configuration gives sharded queues one
        return ShardedWorkQueue(
            qc.name, qc.shards, qc.process, qc.finish_fn, key=qc.key_fn, **limits
        )
    limits.update(
        max_items=qc.max_items,
        policy=qc.policy,
        block_timeout=qc.block_timeout,
        on_drop=_ref(qc.on_drop),
        deadline=qc.deadline,
        on_expire=_ref(qc.on_expire),
    )
    if qc.kind == "batch":
        assert qc.batch_size is not None  # the configuration gives batch queues one
        return BatchWorkQueue(qc.name, qc.process, qc.finish_fn, batch_size=qc.batch_size, **limits)
    if qc.kind == "value":
        return WorkQueueVal(qc.name, qc.process, qc.finish_fn, **limits)
    if qc.kind == "workqueue":
        return WorkQueue(qc.name, qc.process, qc.finish_fn, **limits)
    return PointerWQ(qc.name, qc.process, qc.finish_fn, **limits)


def change_queue(q: AnyQueue, qc: QueueConfig) -> None:
    """Give a running queue the settings of ``qc`` that may change in place (those that
    may not are in ``qc.identity()``: a change of them replaces the queue)."""
    q.timeout = qc.timeout
    q.suicide_timeout = qc.suicide_timeout
    if isinstance(q, ShardedWorkQueue):
        return
    if isinstance(q, BatchWorkQueue) and qc.batch_size is not None:
        q.batch_size = qc.batch_size
    q.policy = qc.policy
    q.block_timeout = qc.block_timeout
    q.max_items = qc.max_items
    q.deadline = qc.deadline  # the queue takes deadlines if qc has one (identity)
    if not isinstance(q, CallQueue):  # its callbacks are the executor's
        q.set_on_drop(_ref(qc.on_drop))
        q.set_on_expire(_ref(qc.on_expire))


def _ref(ref: Ref | None) -> Callable[..., Any] | None:
    return None if ref is None else ref.target


def changes(old: QueueConfig, new: QueueConfig) -> str:
    """What a reload changed on a running queue, as ``key old -> new``."""
    changed = [
        f"{f.name} {_show(getattr(old, f.name))} -> {_show(getattr(new, f.name))}"
        for f in fields(QueueConfig)
        if getattr(old, f.name) != getattr(new, f.name)
    ]
    return ", ".join(changed) or "unchanged"


def replaced_by(old: QueueConfig, new: QueueConfig) -> str:
    """Why ``new`` replaces the queue of ``old`` (what of its identity changed)."""
    changed = [
        f.name
        for f in fields(QueueConfig)
        if f.metadata["key"].replaces and getattr(old, f.name) != getattr(new, f.name)
    ]
    if (old.deadline is None) != (new.deadline is None):
        changed.append("deadline " + ("given" if new.deadline is not None else "taken away"))
    return f"{', '.join(changed)} changed; a queue cannot change that in place"


def _show(value: object) -> str:
    if value is None:
        return "none"
    return f"{value:g}" if isinstance(value, float) else str(value)
