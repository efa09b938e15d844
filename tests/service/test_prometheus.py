"""A real Prometheus (Debian's package) scrapes the service; promtool checks its exposition.

Without the binaries these tests skip, unless REQUIRE_PROMETHEUS is set (as `.ci/run`
does, after installing the package): then they fail.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from .conftest import DEADLINE, binary, poll, promtool_check
from .process import ServiceProcess
from .test_process import DRAIN, ticking

pytestmark = pytest.mark.slow  # subprocesses: the service and Prometheus

SCRAPE_DEADLINE = 90.0  # Prometheus starts, then its first scrape lands several seconds later


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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


class Prometheus:
    def __init__(self, tmp_path: Path, target: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [
                {"job_name": "threadpool", "static_configs": [{"targets": [target]}]}
            ],
        }
        config_path = tmp_path / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(config))
        self.log_path = tmp_path / "prometheus.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [
                binary("prometheus"),
                f"--config.file={config_path}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def query(self, promql: str) -> list[dict[str, object]] | None:
        """The vector result of an instant query; None while Prometheus cannot answer."""
        if self.proc.poll() is not None:
            raise AssertionError(f"prometheus exited: {self.log_path.read_text()}")
        url = f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                answer = json.load(response)
        except OSError:
            return None  # not listening yet
        assert answer["status"] == "success", answer
        result: list[dict[str, object]] = answer["data"]["result"]
        return result

    def value(self, promql: str) -> float | None:
        result = self.query(promql)
        if not result:
            return None
        (sample,) = result
        return float(sample["value"][1])  # type: ignore[index]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(DEADLINE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(DEADLINE)
        self._log.close()


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
