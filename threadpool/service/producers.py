"""Producers: what feeds the service's queues, each on a thread of its own.

A producer is built at configuration load by its factory,
``factory(settings, base_dir=...) -> producer``, and the service calls
``producer.run(ctx)`` on a dedicated thread. ``run`` must return soon after
``ctx.stopping`` is set (``ctx.wait(seconds)`` sleeps and says whether to
stop). It hands items to queues by name with ``ctx.submit(pool, queue, item)``,
which returns False, and takes nothing, when no such queue exists (it may have
been removed by a reload): the producer decides what that means for the item.
A bounded queue (``max_items``) that is full applies its ``policy``: under
``reject`` (and ``block`` past its ``block_timeout``) ``submit`` raises
``threadpool.QueueFull``, the item not taken - a producer that lets it escape
dies, as with any exception; under ``block`` it waits for room, under
``caller_runs`` it runs the item itself. ``submit(..., deadline=seconds)``
gives an item its own deadline on a queue configured with one;
``submit(..., key=k)`` gives the key of an item of a sharded queue (needed when
the queue has no ``key`` function).

A queue of kind ``calls`` is an executor on its pool: ``ctx.executor(pool,
queue)`` returns it (a ``threadpool.Executor``: ``submit(fn, *args)`` gives a
``concurrent.futures.Future``), for a producer, or for the handlers it hands
it to in its items (as it may hand them ``ctx.submit``).
``ctx.queued(pool, queue)`` tells how many items wait there, for a producer
that keeps the queue short rather than loading everything at once.

A producer runs for the life of the service (or of its configuration). One
whose ``run`` ends by itself - raising (logged with its traceback) or
returning before it was asked to stop - is *dead*: ``/health`` answers 503
naming it, ``threadpool_producer_up`` is 0 for it, and the next reload
(SIGHUP, or any change of the file) starts a new one. A producer with a
finite amount of work waits on ``ctx.wait`` once it is done.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Hashable, Iterable
from time import monotonic
from typing import Any, Protocol

from threadpool import Executor

from .config import ProducerConfig

logger = logging.getLogger("threadpool.service")


class Router(Protocol):
    """What a producer's context forwards to (the service's pools)."""

    def submit(
        self,
        pool: str,
        queue: str,
        item: Any,
        *,
        key: Hashable = None,
        deadline: float | None = None,
    ) -> bool: ...

    def queued(self, pool: str, queue: str) -> int | None: ...

    def executor(self, pool: str, queue: str) -> Executor: ...


class ProducerContext:
    """What ``run(ctx)`` is given. Thread-safe; handlers may use ``submit`` too."""

    def __init__(self, name: str, router: Router) -> None:
        self.name = name
        self.logger = logging.getLogger(f"threadpool.producer.{name}")
        self._router = router
        self._stop = threading.Event()

    @property
    def stopping(self) -> bool:
        """Whether the producer has been asked to stop."""
        return self._stop.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True as soon as the producer is asked to stop."""
        return self._stop.wait(seconds)

    def submit(
        self,
        pool: str,
        queue: str,
        item: Any,
        *,
        key: Hashable = None,
        deadline: float | None = None,
    ) -> bool:
        """Queue ``item``; False (item not taken) when that queue does not exist.
        QueueFull from a full bounded queue that refuses it; ``key`` for a sharded
        queue, ``deadline`` (seconds) for a queue with deadlines (see the module
        docstring)."""
        return self._router.submit(pool, queue, item, key=key, deadline=deadline)

    def queued(self, pool: str, queue: str) -> int | None:
        """Items waiting in that queue; None if unknown or no such queue."""
        return self._router.queued(pool, queue)

    def executor(self, pool: str, queue: str = "calls") -> Executor:
        """The ``concurrent.futures`` executor of ``pool``/``queue``, a queue of kind
        ``calls`` (LookupError for anything else): ``submit``, ``map``,
        ``submit_within``, ``await executor.run(...)``; the calls run on the pool's
        workers, a hung one shows on ``/health``. The service shuts it down, not you;
        after a reload replaced or removed the queue it refuses new calls
        (RuntimeError): ask again."""
        return self._router.executor(pool, queue)


class ProducerThread:
    """Runs one producer's ``run(ctx)`` on a thread named ``producer <name>``."""

    def __init__(self, config: ProducerConfig, router: Router) -> None:
        self.config = config
        self.context = ProducerContext(config.name, router)
        self._thread = threading.Thread(
            target=self._main, name=f"producer {config.name}", daemon=True
        )
        self._death: str | None = None  # how run() ended by itself; set once, by its thread

    def start(self) -> None:
        self._thread.start()
        logger.info("producer %s: started (%s)", self.config.name, self.config.factory)

    def _main(self) -> None:
        name = self.config.name
        try:
            self.config.instance.run(self.context)
        except Exception as exc:
            self._death = f"run() raised {type(exc).__name__}: {exc}"
            logger.exception("producer %s: run() raised; dead until the next reload", name)
            return
        if not self.context.stopping:
            self._death = "run() returned before it was asked to stop"
            logger.error("producer %s: %s; dead until the next reload", name, self._death)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def death(self) -> str | None:
        """How ``run`` ended by itself (the producer is dead), or None."""
        return self._death

    def ask_to_stop(self) -> None:
        """Set ``ctx.stopping`` (and wake ``ctx.wait``); ``stop`` waits for it."""
        self.context._stop.set()

    def stop(self, timeout: float) -> bool:
        """Ask the producer to stop and wait up to ``timeout`` seconds; whether it did."""
        self.ask_to_stop()
        if self._thread.ident is not None:
            self._thread.join(timeout)
        if self._thread.is_alive():
            logger.warning(
                "producer %s: still running %gs after being asked to stop; left behind",
                self.config.name,
                timeout,
            )
            return False
        logger.info("producer %s: stopped", self.config.name)
        return True


def stop_all(threads: Iterable[ProducerThread], timeout: float) -> None:
    """Ask every producer to stop at once, then wait for them all within ``timeout``
    seconds in total (not each): the producers still running by then are left behind."""
    threads = list(threads)
    for thread in threads:
        thread.ask_to_stop()
    end = monotonic() + timeout
    for thread in threads:
        thread.stop(max(end - monotonic(), 0.0))
