"""threadpool: a Ceph-style ThreadPool with work queues and heartbeats.

    from threadpool import ThreadPool, HeartbeatMap, WorkQueueVal, BatchWorkQueue
    hb = HeartbeatMap("osd")
    pool = ThreadPool("osd_tp", num_threads=4, thread_name="tp_osd", heartbeat_map=hb)
    ops = WorkQueueVal("ops", process=handle_op, timeout=15, suicide_timeout=150)
    pool.add_work_queue(ops)
    pool.start()
    ops.queue(item)            # handle_op(item, handle) runs on a worker
    pool.drain(ops); pool.stop()

Modules: ``pool`` (ThreadPool: control, sizing, statistics), ``state`` (what
the pool, its workers and its queues share, with its locking rules),
``worker`` (the worker loop), ``queue_base`` (the dequeue / process / finish
protocol and the counters), ``storage`` (the ready-made storage: bound and
deadlines), ``limits`` (QueueFull, DeadlineExpired, the policies), ``queues``
and ``pointer`` (the four ready-made queues), ``sharded``
(ShardedWorkQueue: per-key order), ``executor`` (Executor, CallQueue:
concurrent.futures on a pool), ``heartbeat`` (HeartbeatMap,
TPHandle, the checker and the suicide action), ``histogram`` (bucket
counters), ``freethreading`` (the locked paths of a build without the GIL).
The pool core imports only the standard library and ``lockdep``.
"""

from .executor import CallQueue, Executor
from .heartbeat import HeartbeatHandle, HeartbeatMap, TPHandle, abort_on_suicide
from .histogram import Histogram
from .limits import POLICIES, DeadlineExpired, QueueFull
from .pointer import PointerWQ
from .pool import StopResult, ThreadPool
from .queue_base import BaseWorkQueue
from .queues import BatchWorkQueue, WorkQueue, WorkQueueVal
from .sharded import ShardedWorkQueue

__all__ = [
    "POLICIES",
    "BaseWorkQueue",
    "BatchWorkQueue",
    "CallQueue",
    "DeadlineExpired",
    "Executor",
    "HeartbeatHandle",
    "HeartbeatMap",
    "Histogram",
    "PointerWQ",
    "QueueFull",
    "ShardedWorkQueue",
    "StopResult",
    "TPHandle",
    "ThreadPool",
    "WorkQueue",
    "WorkQueueVal",
    "abort_on_suicide",
]
