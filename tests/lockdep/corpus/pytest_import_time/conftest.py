# expect: order
# mode: pytest --lockdep
"""Fixtures of a test project for ``ratelimit``, a small library whose locks are
made when it is imported, here, before any test runs.

The bug is in the library: allow() takes the buckets lock, then the stats lock;
report() takes them the other way round. Each test passes on its own.
"""

import pytest
import ratelimit


@pytest.fixture
def limiter() -> ratelimit.RateLimits:
    ratelimit.reset()
    return ratelimit.RateLimits(capacity=2)
