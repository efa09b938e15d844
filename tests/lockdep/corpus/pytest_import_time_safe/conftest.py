# expect: clean
# mode: pytest --lockdep
"""Fixtures of a test project for ``ratelimit``, a small library whose locks are
made when it is imported, here, before any test runs.

The library takes its locks in one order: the buckets, then the stats.
"""

import pytest
import ratelimit


@pytest.fixture
def limiter() -> ratelimit.RateLimits:
    ratelimit.reset()
    return ratelimit.RateLimits(capacity=2)
