# expect: clean
"""A configuration cache that loads missing keys on demand.

get() holds the cache's lock while it loads a missing key. Fixed: the loader
stores the value through _put_locked(), which expects the lock held, instead of
put(), which takes it again.
"""

import logging
import threading
from collections.abc import Callable

log = logging.getLogger("config")


class ConfigCache:
    def __init__(self, load: Callable[[str], str]) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, str] = {}
        self._load = load
        self.timeouts = 0

    def get(self, key: str) -> str:
        with self._lock:
            if key not in self._values:
                value = self._load(key)
                self._put_locked(key, value)
                return value
            return self._values[key]

    def put(self, key: str, value: str) -> None:
        if not self._lock.acquire(timeout=0.2):
            self.timeouts += 1
            log.warning("config cache busy; %s not cached", key)
            return
        try:
            self._put_locked(key, value)
        finally:
            self._lock.release()

    def _put_locked(self, key: str, value: str) -> None:
        self._values[key] = value


def main() -> None:
    logging.basicConfig(level=logging.ERROR)
    cache = ConfigCache(load=lambda key: f"value-of-{key}")
    reader = threading.Thread(target=lambda: [cache.get("db.url") for _ in range(2)])
    reader.start()
    reader.join(timeout=30)
    cache.put("db.pool", "10")
    assert cache.timeouts == 0, cache.timeouts
    assert cache.get("db.pool") == "10"
    print("timeouts:", cache.timeouts)


if __name__ == "__main__":
    main()
