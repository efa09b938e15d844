# expect: order
"""A metrics registry: counters and histograms, each table behind its own lock,
the two locks made on one line.

snapshot() reads counters then histograms. The bug: observe() bumps the
observation counter while it still holds the histograms lock, the other order.
"""

import threading
from collections import defaultdict

_counters_lock = threading.Lock(); _histograms_lock = threading.Lock()  # noqa: E702  # fmt: skip
_counters: dict[str, int] = defaultdict(int)
_histograms: dict[str, list[float]] = defaultdict(list)


def inc(name: str, by: int = 1) -> None:
    with _counters_lock:
        _counters[name] += by


def observe(name: str, value: float) -> None:
    with _histograms_lock:  # site
        _histograms[name].append(value)
        with _counters_lock:  # site
            _counters["observations"] += 1


def snapshot() -> dict[str, object]:
    with _counters_lock:  # site
        with _histograms_lock:  # site
            return {
                "counters": dict(_counters),
                "histograms": {k: sorted(v) for k, v in _histograms.items()},
            }


def main() -> None:
    inc("requests", 3)
    snapshots: list[dict[str, object]] = []
    scraper = threading.Thread(target=lambda: snapshots.append(snapshot()))
    scraper.start()
    scraper.join(timeout=30)
    handler = threading.Thread(target=observe, args=("latency", 0.25))
    handler.start()
    handler.join(timeout=30)
    assert snapshot()["counters"] == {"requests": 3, "observations": 1}
    print(snapshot())


if __name__ == "__main__":
    main()
