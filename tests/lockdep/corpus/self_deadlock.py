# expect: recursive
"""A configuration cache that loads missing keys on demand.

get() holds the cache's lock while it loads a missing key. The bug: the loader
stores the value with put(), which takes the same (non-reentrant) lock again. The
author guarded against hangs with a timeout, so the program limps on, slowly, and
never caches a loaded value; without the timeout the thread hangs on itself.
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
        with self._lock:  # site
            if key not in self._values:
                value = self._load(key)
                self.put(key, value)
                return value
            return self._values[key]

    def put(self, key: str, value: str) -> None:
        if not self._lock.acquire(timeout=0.2):  # site
            self.timeouts += 1
            log.warning("config cache busy; %s not cached", key)
            return
        try:
            self._values[key] = value
        finally:
            self._lock.release()


def main() -> None:
    logging.basicConfig(level=logging.ERROR)
    cache = ConfigCache(load=lambda key: f"value-of-{key}")
    reader = threading.Thread(target=lambda: [cache.get("db.url") for _ in range(2)])
    reader.start()
    reader.join(timeout=30)
    assert cache.timeouts == 2, cache.timeouts
    print("timeouts:", cache.timeouts)


if __name__ == "__main__":
    main()
