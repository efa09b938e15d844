"""A real Prometheus (Debian's package) scraping a target, for the service's tests: started
on a free port with a 1 s scrape interval (and rule files, if given), queried over its HTTP
API, always stopped."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from .conftest import DEADLINE, binary


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Prometheus:
    def __init__(self, tmp_path: Path, target: str, rule_files: Sequence[Path] = ()) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config: dict[str, Any] = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [
                {"job_name": "threadpool", "static_configs": [{"targets": [target]}]}
            ],
        }
        if rule_files:
            config["rule_files"] = [str(path) for path in rule_files]
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

    def api(self, path: str, **params: str) -> dict[str, Any] | None:
        """The answer of an API call (errors included: status "error", with the reason);
        None while Prometheus cannot answer."""
        if self.proc.poll() is not None:
            raise AssertionError(f"prometheus exited: {self.log_path.read_text()}")
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                answer: dict[str, Any] = json.load(response)
        except urllib.error.HTTPError as exc:  # 400/422: a bad query, the reason in the body
            try:
                answer = json.load(exc)
            except ValueError:
                return None  # 503 and plain text: starting up
        except OSError:
            return None  # not listening yet
        return answer

    def query(self, promql: str) -> list[dict[str, object]] | None:
        """The vector result of an instant query; None while Prometheus cannot answer."""
        answer = self.api("query", query=promql)
        if answer is None:
            return None
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
