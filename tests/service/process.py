"""The service as a subprocess, for the end-to-end tests: started on a configuration in a
temporary directory, its log in a file, always stopped (killed if it must be)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from .conftest import DEADLINE, REPO, poll, request, write


class ServiceProcess:
    """``python -m threadpool serve --config <dir>/config.yaml``, run from ``dir``."""

    def __init__(self, directory: Path, document: Any, env: dict[str, str] | None = None) -> None:
        self.dir = directory
        self.config = write(directory / "config.yaml", document)
        self.log_path = directory / "service.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 (closed in stop)
        environ = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
        for key in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
            if env is None or key not in env:
                environ.pop(key, None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "threadpool", "serve", "--config", str(self.config)],
            cwd=directory,
            env=environ,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self._url: str | None = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_log(self, pattern: str, timeout: float = DEADLINE) -> re.Match[str]:
        """The first match of ``pattern`` in the log, waiting for it to appear."""

        def probe() -> re.Match[str] | None:
            if self.proc.poll() is not None:
                raise AssertionError(f"the service exited ({self.proc.returncode}):\n{self.log()}")
            return re.search(pattern, self.log())

        return poll(f"{pattern!r} in the service's log", probe, timeout)

    @property
    def url(self) -> str:
        if self._url is None:
            self._url = self.wait_log(r"serving (http://\S+?)/metrics").group(1)
        return self._url

    def get(self, path: str) -> tuple[int, bytes]:
        status, _headers, body = request(self.url, path)
        return status, body

    def metric(self, line_start: str) -> float | None:
        status, body = self.get("/metrics")
        assert status == 200
        for line in body.decode().splitlines():
            if line.startswith(line_start + " "):
                return float(line.rsplit(" ", 1)[1])
        return None

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def wait(self, timeout: float) -> int:
        """The exit status, waiting up to ``timeout`` seconds (fails the test after)."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"the service did not exit within {timeout}s:\n{self.log()}"
            ) from None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(DEADLINE)
        self._log.close()
