import threading

import ratelimit


def test_allows_up_to_capacity(limiter: ratelimit.RateLimits) -> None:
    assert [limiter.allow("ada") for _ in range(3)] == [True, True, False]


def test_keys_are_limited_separately(limiter: ratelimit.RateLimits) -> None:
    assert limiter.allow("ada") and limiter.allow("bob")


def test_allow_from_many_threads(limiter: ratelimit.RateLimits) -> None:
    results: list[bool] = []
    threads = [
        threading.Thread(target=lambda: results.append(limiter.allow("shared"))) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert results.count(True) == 2


def test_report_counts(limiter: ratelimit.RateLimits) -> None:
    limiter.allow("ada")
    limiter.allow("ada")
    limiter.allow("ada")
    assert limiter.report() == {"allowed": 2, "denied": 1, "keys": 1}
