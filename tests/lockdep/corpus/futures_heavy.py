# expect: clean
"""Heavy, correct use of concurrent.futures: a crawler-style fan-out of 3,000 small
jobs on a thread pool, collected with as_completed(); then map(), wait() with
FIRST_COMPLETED, done-callbacks, cancellation, and jobs that submit follow-up jobs
to a second pool.

as_completed() holds every pending future's lock at once while it installs its
waiter (3,000 locks of one class): that is correct, and it must stay cheap.
"""

import concurrent.futures as cf
import threading

JOBS = 3_000


def checksum(n: int) -> int:
    return (n * 2654435761) % 2**32


def main() -> None:
    done_callbacks = 0
    callbacks_lock = threading.Lock()

    def on_done(future: cf.Future[int]) -> None:
        nonlocal done_callbacks
        with callbacks_lock:
            done_callbacks += 1

    with cf.ThreadPoolExecutor(max_workers=8, thread_name_prefix="fetch") as pool:
        futures = [pool.submit(checksum, n) for n in range(JOBS)]
        for future in futures[:100]:
            future.add_done_callback(on_done)
        total = sum(future.result() for future in cf.as_completed(futures, timeout=120))
        assert total == sum(checksum(n) for n in range(JOBS))

        mapped = list(pool.map(checksum, range(500), chunksize=20))
        assert mapped == [checksum(n) for n in range(500)]

        gate = threading.Event()
        slow = pool.submit(gate.wait, 30)
        fast = pool.submit(checksum, 7)
        done, pending = cf.wait([slow, fast], timeout=30, return_when=cf.FIRST_COMPLETED)
        assert fast in done and slow in pending
        gate.set()
        assert slow.result(timeout=30)

    with cf.ThreadPoolExecutor(max_workers=2) as follow_up, cf.ThreadPoolExecutor(4) as pool:

        def parent(n: int) -> int:
            return follow_up.submit(checksum, n).result(timeout=30) + 1

        results = list(pool.map(parent, range(200)))
        assert results == [checksum(n) + 1 for n in range(200)]
        queued = [follow_up.submit(checksum, n) for n in range(50)]
        cancelled = sum(f.cancel() for f in queued)
        cf.wait(queued, timeout=30)

    assert done_callbacks == 100, done_callbacks
    print(f"{JOBS} jobs, {cancelled} cancelled follow-ups")


if __name__ == "__main__":
    main()
