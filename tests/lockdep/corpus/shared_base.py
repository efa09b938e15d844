# expect: clean
"""Components that share a base class providing their lock: a cache and a database
client, plus the module's metrics registry with a lock of its own.

A cache refresh records a metric while it holds the cache's lock (cache, then
metrics); the metrics export asks the database for its query count while it holds
the metrics lock (metrics, then database). Cache and database are unrelated
objects that share only their base class: the locks are only ever taken in the
order cache, metrics, database, and nothing can deadlock.
"""

import threading


class Component:
    """A named part of the application; subclasses guard their state with _lock."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()


_metrics_lock = threading.Lock()
_metrics: dict[str, int] = {}


def record(name: str, value: int = 1) -> None:
    with _metrics_lock:
        _metrics[name] = _metrics.get(name, 0) + value


class Database(Component):
    def __init__(self) -> None:
        super().__init__("db")
        self._rows = {f"user:{i}": f"User {i}" for i in range(50)}
        self._queries = 0

    def query(self, key: str) -> str:
        with self._lock:
            self._queries += 1
            return self._rows[key]

    def query_count(self) -> int:
        with self._lock:
            return self._queries


class Cache(Component):
    def __init__(self, db: Database) -> None:
        super().__init__("cache")
        self._db = db
        self._entries: dict[str, str] = {}

    def get(self, key: str) -> str:
        with self._lock:
            if key in self._entries:
                record("cache.hit")
                return self._entries[key]
        value = self._db.query(key)
        with self._lock:
            self._entries[key] = value
            record("cache.miss")
        return value


def export(db: Database) -> dict[str, int]:
    with _metrics_lock:
        snapshot = dict(_metrics)
        snapshot["db.queries"] = db.query_count()
        return snapshot


def main() -> None:
    db = Database()
    cache = Cache(db)
    exports: list[dict[str, int]] = []

    def client(seed: int) -> None:
        for i in range(200):
            cache.get(f"user:{(i * seed) % 50}")
            if i % 50 == 0:
                exports.append(export(db))

    clients = [threading.Thread(target=client, args=(seed,)) for seed in (1, 3, 7)]
    for thread in clients:
        thread.start()
    for thread in clients:
        thread.join(timeout=60)
    final = export(db)
    assert final["cache.hit"] + final["cache.miss"] == 600, final
    print(final)


if __name__ == "__main__":
    main()
