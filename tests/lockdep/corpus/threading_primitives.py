# expect: clean
"""The threading module's primitives, used as they are meant to be in a small
simulation: a connection pool (BoundedSemaphore for slots, a Lock for the free
list), a bounded buffer on a Condition (wait_for / notify_all), a Barrier between
simulation phases, an Event to stop a monitor, an RLock re-entered by a recursive method,
and a Timer for a watchdog that never fires.
"""

import threading

CLIENTS = 6
ROUNDS = 40


class ConnectionPool:
    def __init__(self, size: int) -> None:
        self._slots = threading.BoundedSemaphore(size)
        self._lock = threading.Lock()
        self._free = [f"conn-{n}" for n in range(size)]
        self.peak = 0
        self._in_use = 0

    def acquire(self) -> str:
        self._slots.acquire()
        with self._lock:
            self._in_use += 1
            self.peak = max(self.peak, self._in_use)
            return self._free.pop()

    def release(self, connection: str) -> None:
        with self._lock:
            self._free.append(connection)
            self._in_use -= 1
        self._slots.release()


class BoundedBuffer:
    def __init__(self, capacity: int) -> None:
        self._items: list[int] = []
        self._capacity = capacity
        self._changed = threading.Condition()

    def put(self, item: int) -> None:
        with self._changed:
            self._changed.wait_for(lambda: len(self._items) < self._capacity, timeout=30)
            self._items.append(item)
            self._changed.notify_all()

    def get(self) -> int:
        with self._changed:
            self._changed.wait_for(lambda: self._items, timeout=30)
            item = self._items.pop(0)
            self._changed.notify_all()
            return item


class Tree:
    """A tree whose size is computed recursively under one re-entrant lock."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.children: dict[str, Tree] = {}

    def add(self, path: list[str]) -> None:
        with self._lock:
            if path:
                self.children.setdefault(path[0], Tree()).add(path[1:])

    def size(self) -> int:
        with self._lock:
            return 1 + sum(child.size() for child in self.children.values())


def main() -> None:
    pool = ConnectionPool(size=3)
    buffer = BoundedBuffer(capacity=4)
    phase = threading.Barrier(CLIENTS + 1)
    stop = threading.Event()
    tree = Tree()
    watchdog = threading.Timer(60, lambda: print("watchdog: stuck!"))
    watchdog.start()
    consumed: list[int] = []

    def client(number: int) -> None:
        for n in range(ROUNDS):
            connection = pool.acquire()
            try:
                buffer.put(number * ROUNDS + n)
                tree.add([f"client-{number}", f"round-{n % 5}"])
            finally:
                pool.release(connection)
        phase.wait(timeout=30)  # phase 1 done
        phase.wait(timeout=30)  # phase 2: the totals are read

    samples: list[int] = []

    def consumer() -> None:
        while len(consumed) < CLIENTS * ROUNDS:
            consumed.append(buffer.get())

    def monitor() -> None:
        while not stop.wait(0.002):
            samples.append(pool.peak)

    eater = threading.Thread(target=consumer, name="consumer")
    eater.start()
    watcher = threading.Thread(target=monitor, name="monitor")
    watcher.start()
    clients = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in clients:
        thread.start()
    phase.wait(timeout=30)
    stop.set()
    watcher.join(timeout=60)
    eater.join(timeout=60)
    size = tree.size()
    phase.wait(timeout=30)
    for thread in clients:
        thread.join(timeout=60)
    watchdog.cancel()
    watchdog.join(timeout=30)
    assert sorted(consumed) == list(range(CLIENTS * ROUNDS))
    assert size == 1 + CLIENTS * 6 and max(samples, default=0) <= pool.peak <= 3, size
    print("consumed", len(consumed), "tree", size, "peak", pool.peak)


if __name__ == "__main__":
    main()
