"""A program that uses the standard library's locks a lot but never nests them.

Used by install_overhead.py, run with and without ``python -m lockdep run``.
With "imports" as argument it only imports (start-up cost).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import os
import queue
import sys
import threading

if sys.argv[1:] == ["imports"]:
    sys.exit(0)

logging.basicConfig(stream=open(os.devnull, "w"), level=logging.INFO)  # noqa: SIM115
log = logging.getLogger("workload")

# Logging: a handler lock per record.
for i in range(5000):
    log.info("record %d %s", i, json.dumps({"i": i}))

# A queue between two threads.
q: queue.Queue[int | None] = queue.Queue(maxsize=100)


def consume() -> None:
    while q.get() is not None:
        pass


consumer = threading.Thread(target=consume)
consumer.start()
for i in range(20000):
    q.put(i)
q.put(None)
consumer.join()

# A thread pool.
with concurrent.futures.ThreadPoolExecutor(4) as pool:
    list(pool.map(abs, range(3000)))

# Events and conditions.
for _ in range(2000):
    e = threading.Event()
    e.set()
    e.wait()


# asyncio tasks sharing a lock.
async def main() -> None:
    lock = asyncio.Lock()

    async def work() -> None:
        async with lock:
            await asyncio.sleep(0)

    await asyncio.gather(*(work() for _ in range(1000)))


asyncio.run(main())
