"""Token-bucket rate limits per key, with usage statistics.

The module's two locks are made at import: one for the buckets, one for the
statistics.
"""

import threading
import time

_buckets_lock = threading.Lock()
_buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last refill)
_stats_lock = threading.Lock()
_stats: dict[str, int] = {"allowed": 0, "denied": 0}


class RateLimits:
    def __init__(self, capacity: float, per_second: float = 1.0) -> None:
        self.capacity = capacity
        self.per_second = per_second

    def allow(self, key: str) -> bool:
        now = time.monotonic()
        with _buckets_lock:
            tokens, last = _buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.per_second)
            allowed = tokens >= 1
            _buckets[key] = (tokens - 1 if allowed else tokens, now)
            with _stats_lock:
                _stats["allowed" if allowed else "denied"] += 1
        return allowed

    def report(self) -> dict[str, object]:
        with _buckets_lock:
            keys = len(_buckets)
            with _stats_lock:
                stats: dict[str, object] = dict(_stats)
        stats["keys"] = keys
        return stats


def reset() -> None:
    with _buckets_lock:
        _buckets.clear()
    with _stats_lock:
        _stats.update(allowed=0, denied=0)
