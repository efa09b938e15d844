"""Round-robin fairness: busy queues share the workers equally."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest

from threadpool import PointerWQ, WorkQueue, WorkQueueVal

from .conftest import Harness, wait

pytestmark = pytest.mark.slow  # fairness

PER_QUEUE = 20_000
SAMPLE = 30_000  # processed while every queue still has work


def test_three_busy_queues_each_get_a_third(tp: Harness) -> None:
    pool = tp.pool("fair", 4)
    log: list[str] = []
    sampled = threading.Event()

    def handler(name: str) -> Any:
        def process(item: object, handle: object) -> None:
            log.append(name)
            if len(log) >= SAMPLE:
                sampled.set()

        return process

    queues = [
        WorkQueueVal("val", process=handler("val")),
        WorkQueue("ref", process=handler("ref")),
        PointerWQ("ptr", process=handler("ptr")),
    ]
    for q in queues:
        pool.add_work_queue(q)
    pool.pause_new()
    pool.start()
    for q in queues:
        for i in range(PER_QUEUE):
            q.queue(i + 1)
    pool.unpause()
    wait(sampled, f"{SAMPLE} items")
    shares = Counter(log[:SAMPLE])
    third = SAMPLE / 3
    for name in ("val", "ref", "ptr"):
        assert abs(shares[name] - third) <= 0.1 * third, f"unfair shares: {dict(shares)}"
    pool.stop()
