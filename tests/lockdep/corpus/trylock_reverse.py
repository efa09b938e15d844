# expect: clean
"""A cache of open documents with a lock per document and one lock for the LRU list.

Readers lock a document, then the LRU list to mark it recently used. The evictor
and the compactor go the other way round: they hold the LRU list lock and only
*try* each document's lock (``acquire(blocking=False)`` and ``acquire(timeout=0)``),
skipping a document that is busy. A try never waits, so the reverse order cannot
deadlock, and readers, evictor and compactor run at the same time.
"""

import random
import threading
from collections import OrderedDict


class Document:
    def __init__(self, name: str) -> None:
        self.name = name
        self.lock = threading.Lock()
        self.text = ""
        self.reads = 0


class DocumentCache:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._lru_lock = threading.Lock()
        self._lru: OrderedDict[str, Document] = OrderedDict()
        self.evicted = 0

    def open(self, name: str) -> Document:
        with self._lru_lock:
            document = self._lru.get(name)
            if document is None:
                document = self._lru[name] = Document(name)
            return document

    def read(self, name: str) -> int:
        document = self.open(name)
        with document.lock:
            document.reads += 1
            with self._lru_lock:
                if name in self._lru:
                    self._lru.move_to_end(name)
            return document.reads

    def evict(self) -> None:
        with self._lru_lock:
            for name in list(self._lru)[: max(0, len(self._lru) - self.capacity)]:
                document = self._lru[name]
                if document.lock.acquire(blocking=False):
                    try:
                        del self._lru[name]
                        self.evicted += 1
                    finally:
                        document.lock.release()

    def compact(self) -> int:
        compacted = 0
        with self._lru_lock:
            for document in self._lru.values():
                if document.lock.acquire(timeout=0):
                    try:
                        document.text = document.text.strip()
                        compacted += 1
                    finally:
                        document.lock.release()
        return compacted


def reader(cache: DocumentCache, seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(400):
        cache.read(f"doc-{rng.randrange(30)}")


def housekeeper(cache: DocumentCache, stop: threading.Event) -> None:
    while not stop.is_set():
        cache.evict()
        cache.compact()


def main() -> None:
    cache = DocumentCache(capacity=10)
    stop = threading.Event()
    keeper = threading.Thread(target=housekeeper, args=(cache, stop), name="housekeeper")
    keeper.start()
    readers = [threading.Thread(target=reader, args=(cache, seed)) for seed in range(4)]
    for thread in readers:
        thread.start()
    for thread in readers:
        thread.join(timeout=60)
    stop.set()
    keeper.join(timeout=60)
    cache.evict()
    assert cache.evicted > 0
    print("evicted:", cache.evicted)


if __name__ == "__main__":
    main()
