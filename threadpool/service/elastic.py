"""Elastic pool sizing in the service layer (GlusterFS ``syncenv``, SPEC 4.4), by sampling.

A pool configured with ``min_threads``/``max_threads`` starts at the minimum.
Every ``service.scale_interval`` seconds the service calls ``Elastic.step``,
which reads the pool's statistics and:

* grows the pool when items wait and every running thread is busy: by the
  number of waiting items, up to ``max_threads``;
* shrinks it by one thread when, at every step for ``idle_timeout`` seconds,
  some thread was idle, and the pool is above ``min_threads``; the idle clock
  then starts again, so an idle pool loses one thread per ``idle_timeout``.

The decision is made on samples, not on each thread's own idle time: a burst
shorter than a step may go unseen, which only delays growth by a step. It
costs one ``pool.stats()`` per pool and step; the workers pay nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from threadpool import ThreadPool

logger = logging.getLogger("threadpool.service")


@dataclass
class Elastic:
    """The sizing state of one elastic pool (limits from its configuration)."""

    min_threads: int
    max_threads: int
    idle_timeout: float
    idle_since: float | None = None  # when a thread was first seen idle, in this idle spell

    def clamp(self, pool: ThreadPool) -> None:
        """Bring the pool's target within the limits (after a reload changed them)."""
        target = pool.num_threads
        bounded = min(max(target, self.min_threads), self.max_threads)
        if bounded != target:
            pool.set_num_threads(bounded)

    def step(self, pool: ThreadPool, now: float) -> int | None:
        """One sizing decision at time ``now`` (seconds, monotonic). Returns the new
        target when it changed it, else None."""
        stats = pool.stats()
        target: int = stats["threads_target"]
        running: int = stats["threads"]
        busy: int = stats["threads_busy"]
        waiting: int = sum(q["items"] or 0 for q in stats["queues"].values())
        if waiting and busy >= running >= target and target < self.max_threads:
            self.idle_since = None
            new = min(target + waiting, self.max_threads)
            pool.set_num_threads(new)
            logger.info("%s: %d items wait, all threads busy: grows to %d", pool.name, waiting, new)
            return new
        if busy >= target or (waiting and busy >= running):
            self.idle_since = None  # no spare thread now
            return None
        if self.idle_since is None:
            self.idle_since = now
            return None
        if now - self.idle_since >= self.idle_timeout and target > self.min_threads:
            self.idle_since = now
            pool.set_num_threads(target - 1)
            logger.info(
                "%s: a thread idle for %gs: shrinks to %d", pool.name, self.idle_timeout, target - 1
            )
            return target - 1
        return None
