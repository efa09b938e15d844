"""A real Prometheus (Debian's package) scrapes the service; promtool checks its exposition.

Without the binaries these tests skip, unless REQUIRE_PROMETHEUS is set (as `.ci/run`
does, after installing the package): then they fail.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import DEADLINE, poll, promtool_check
from .process import ServiceProcess
from .prometheus_server import Prometheus
from .test_process import DRAIN, ticking

pytestmark = pytest.mark.slow  # subprocesses: the service and Prometheus

SCRAPE_DEADLINE = 90.0  # Prometheus starts, then its first scrape lands several seconds later


@pytest.fixture
def service(tmp_path: Path) -> Iterator[ServiceProcess]:
    d = ticking(threads=2)
    d["lockdep"] = {"on_violation": "log", "stats": True}
    svc = ServiceProcess(tmp_path, d)
    try:
        yield svc
        svc.signal(signal.SIGTERM)
        assert svc.wait(DRAIN + DEADLINE) == 0
    finally:
        svc.stop()


def test_prometheus_scrapes_the_service_and_sees_items_processed(
    service: ServiceProcess, tmp_path: Path
) -> None:
    target = service.url.removeprefix("http://")
    prometheus = Prometheus(tmp_path, target)
    try:
        processed = 'sum(threadpool_items_processed_total{job="threadpool",pool="main"})'
        poll("up == 1", lambda: prometheus.value('up{job="threadpool"}') == 1, SCRAPE_DEADLINE)
        first = poll("a processed count", lambda: prometheus.value(processed), SCRAPE_DEADLINE)
        poll(
            "the processed count to rise",
            lambda: (prometheus.value(processed) or 0) > first,
            SCRAPE_DEADLINE,
        )
        assert prometheus.value('lockdep_enabled{job="threadpool"}') == 1
        buckets = prometheus.query('threadpool_item_duration_seconds_bucket{job="threadpool"}')
        assert buckets and len(buckets) == 24  # 23 bounds and +Inf, for the one queue
    finally:
        prometheus.stop()


def test_promtool_finds_no_problem_in_the_live_exposition(service: ServiceProcess) -> None:
    poll(
        "a violation-free scrape with items",
        lambda: service.metric('threadpool_items_processed_total{pool="main",queue="ticks"}'),
    )
    status, body = service.get("/metrics")
    assert status == 200
    promtool_check(body)
