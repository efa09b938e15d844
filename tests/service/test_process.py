"""The service end to end, as a subprocess: health, stalls, reloads, signals, exit codes,
bad requests, systemd notifications, and the shipped config.yaml doing real work."""

from __future__ import annotations

import re
import signal
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import DEADLINE, HANDLERS, REPO, doc, poll, raw_request, status_of, write
from .process import ServiceProcess
from .test_httpd import BAD

pytestmark = pytest.mark.slow  # the service as a subprocess

DRAIN = 3.0
STOP_GRACE = 2.0  # runtime.STOP_GRACE: how long a stuck pool may take to stop after the drain


def ticking(threads: int = 1, **service: Any) -> dict[str, Any]:
    """One pool fed by a Ticker; its items stall while the file `stall` exists."""
    d = doc()
    d["service"].update({"reload_check_interval": 0, "drain_timeout": DRAIN, **service})
    d["heartbeat"] = {"interval": 0.1}
    d["pools"][0] = {
        "name": "main",
        "threads": threads,
        "queues": [
            {"name": "ticks", "kind": "value", "handler": f"{HANDLERS}:tick", "timeout": 0.5}
        ],
    }
    d["producers"] = [
        {
            "name": "ticker",
            "factory": f"{HANDLERS}:Ticker",
            "settings": {"queue": "ticks", "interval": 0.02, "stall_file": "stall"},
        }
    ]
    return d


@pytest.fixture
def started(tmp_path: Path) -> Iterator[list[ServiceProcess]]:
    procs: list[ServiceProcess] = []
    try:
        yield procs
    finally:
        for p in procs:
            p.stop()


def start(
    started: list[ServiceProcess], tmp_path: Path, document: Any, **env: str
) -> ServiceProcess:
    proc = ServiceProcess(tmp_path, document, env or None)
    started.append(proc)
    return proc


def test_health_turns_503_while_a_handler_stalls_and_back(
    started: list[ServiceProcess], tmp_path: Path
) -> None:
    svc = start(started, tmp_path, ticking())
    assert svc.get("/health") == (200, b"ok\n")
    poll(
        "items processed",
        lambda: (
            (svc.metric('threadpool_items_processed_total{pool="main",queue="ticks"}') or 0) > 0
        ),
    )
    (tmp_path / "stall").touch()
    poll("/health 503", lambda: svc.get("/health") == (503, b"main thread 0\n"))
    assert svc.metric("threadpool_heartbeat_unhealthy_workers") == 1
    svc.wait_log(r"main thread 0 had timed out after 0\.5")
    (tmp_path / "stall").unlink()
    poll("/health 200 again", lambda: svc.get("/health") == (200, b"ok\n"))
    assert (svc.metric("threadpool_heartbeat_timeouts_total") or 0) >= 1
    svc.signal(signal.SIGTERM)
    assert svc.wait(DRAIN + DEADLINE) == 0


def test_sighup_reloads_a_valid_file_and_rejects_an_invalid_one(
    started: list[ServiceProcess], tmp_path: Path
) -> None:
    svc = start(started, tmp_path, ticking(threads=1))
    assert svc.metric('threadpool_threads_target{pool="main"}') == 1
    write(svc.config, ticking(threads=3))
    svc.signal(signal.SIGHUP)
    poll("3 threads", lambda: svc.metric('threadpool_threads{pool="main"}') == 3)
    assert svc.metric('threadpool_config_reloads_total{result="success"}') == 1
    bad = ticking(threads=3)
    bad["pools"][0]["queues"][0]["kind"] = "fifo"
    write(svc.config, bad)
    svc.signal(signal.SIGHUP)
    poll(
        "an error counted",
        lambda: svc.metric('threadpool_config_reloads_total{result="error"}') == 1,
    )
    svc.wait_log(r"reload \(SIGHUP\) rejected, 1 problems; the running configuration stays")
    svc.wait_log(r"config\.yaml: pools\[0\]\.queues\[0\]\.kind: must be one of batch, value")
    assert svc.metric('threadpool_threads_target{pool="main"}') == 3
    assert svc.get("/health")[0] == 200
    svc.signal(signal.SIGTERM)
    assert svc.wait(DRAIN + DEADLINE) == 0


def test_a_changed_file_is_reloaded_without_a_signal(
    started: list[ServiceProcess], tmp_path: Path
) -> None:
    svc = start(started, tmp_path, ticking(threads=1, reload_check_interval=0.1))
    assert svc.metric('threadpool_threads_target{pool="main"}') == 1
    write(svc.config, ticking(threads=2, reload_check_interval=0.1))
    poll("2 threads", lambda: svc.metric('threadpool_threads_target{pool="main"}') == 2)
    svc.wait_log(r"reloaded \S*config\.yaml \(the file changed\)")
    svc.signal(signal.SIGINT)
    assert svc.wait(DRAIN + DEADLINE) == 0


def test_sigterm_drains_the_queues_and_exits_0(
    started: list[ServiceProcess], tmp_path: Path
) -> None:
    svc = start(started, tmp_path, ticking(threads=2))
    poll(
        "items processed",
        lambda: (
            (svc.metric('threadpool_items_processed_total{pool="main",queue="ticks"}') or 0) > 0
        ),
    )
    svc.signal(signal.SIGTERM)
    assert svc.wait(DRAIN + DEADLINE) == 0
    log = svc.log()
    assert "SIGTERM: shutting down" in log and "producer ticker: stopped" in log
    assert "pool main: stopping" in log and "unprocessed" not in log
    assert log.rstrip().endswith("stopped")


def test_sigterm_with_work_left_logs_it_by_queue_and_exits_0_after_the_deadline(
    started: list[ServiceProcess], tmp_path: Path
) -> None:
    svc = start(started, tmp_path, ticking(threads=1))
    (tmp_path / "stall").touch()  # the one worker stalls: items pile up behind it
    poll("/health 503", lambda: svc.get("/health")[0] == 503)
    svc.signal(signal.SIGTERM)
    assert svc.wait(DRAIN + STOP_GRACE + DEADLINE) == 0
    log = svc.log()
    assert "1 workers still stuck in a handler" in log
    assert "items left unprocessed after the drain deadline: main/ticks: " in log


def test_sigterm_with_a_handler_stuck_for_ever_exits_in_time_naming_the_worker(
    started: list[ServiceProcess], tmp_path: Path
) -> None:
    d = ticking(threads=2)
    d["pools"][0]["queues"][0]["handler"] = f"{HANDLERS}:stuck_forever"
    d["pools"][0]["queues"][0]["timeout"] = 60  # no 503 needed: only the shutdown counts
    svc = start(started, tmp_path, d)
    poll("both workers stuck", lambda: svc.metric('threadpool_threads_busy{pool="main"}') == 2)
    svc.signal(signal.SIGTERM)
    # The drain deadline, then the stop's grace: never the handler's (endless) time.
    assert svc.wait(DRAIN + STOP_GRACE + DEADLINE) == 0
    log = svc.log()
    assert re.search(
        r"pool main: stopping; 2 workers still stuck in a handler 2s past the drain deadline, "
        r"left behind: main thread \d \(queue 'ticks'\), main thread \d \(queue 'ticks'\)",
        log,
    ), log
    assert re.search(r"main: stop\(\) timed out after [\d.]+s; 2 workers still running", log)
    assert log.rstrip().endswith("stopped")


def test_invalid_configuration_exits_2_listing_every_problem(
    started: list[ServiceProcess], tmp_path: Path
) -> None:
    d = ticking()
    d["service"]["port"] = "http"
    d["pools"][0]["queues"][0]["handler"] = "tests.service.handlers:nosuch"
    svc = start(started, tmp_path, d)
    assert svc.wait(DEADLINE) == 2
    lines = svc.log().splitlines()
    assert lines == [
        "threadpool: invalid configuration, 2 problems:",
        f"{svc.config}: service.port: must be an integer 0..65535, got 'http'",
        f"{svc.config}: pools[0].queues[0].handler: module 'tests.service.handlers' has no "
        "attribute 'nosuch'",
    ]


def test_port_in_use_exits_1_with_a_clear_message(
    started: list[ServiceProcess], tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        svc = start(started, tmp_path, ticking(port=port))
        assert svc.wait(DEADLINE) == 1
    assert (
        f"cannot listen on http://127.0.0.1:{port}: Address already in use; another process "
        "listens there: stop it or change service.port"
    ) in svc.log()


def test_malformed_and_huge_requests_get_4xx_and_the_service_keeps_serving(
    started: list[ServiceProcess], tmp_path: Path
) -> None:
    svc = start(started, tmp_path, ticking())
    for data, expected in BAD:
        assert status_of(raw_request(svc.url, data)) == expected
        assert svc.get("/health") == (200, b"ok\n")
    svc.signal(signal.SIGTERM)
    assert svc.wait(DRAIN + DEADLINE) == 0


def test_systemd_hears_ready_watchdog_while_healthy_and_stopping(
    started: list[ServiceProcess], tmp_path: Path
) -> None:
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as manager:
        manager.bind(path)
        manager.settimeout(DEADLINE)
        svc = start(started, tmp_path, ticking(), NOTIFY_SOCKET=path, WATCHDOG_USEC="200000")
        heard: list[bytes] = []
        while not any(b"READY=1" in m for m in heard) or b"WATCHDOG=1" not in heard:
            heard.append(manager.recv(4096))
        ready = next(m for m in heard if b"READY=1" in m)
        assert ready == f"READY=1\nSTATUS=serving {svc.url}".encode()
        (tmp_path / "stall").touch()
        svc.wait_log(r"systemd watchdog: unhealthy, not pinging until healthy again")
        (tmp_path / "stall").unlink()
        poll("/health 200 again", lambda: svc.get("/health")[0] == 200)
        svc.signal(signal.SIGTERM)
        while (message := manager.recv(4096)) != b"STOPPING=1\nSTATUS=draining":
            assert message == b"WATCHDOG=1", message
        assert svc.wait(DRAIN + DEADLINE) == 0


def test_shipped_config_shows_the_scrubbers_counters_rising(
    started: list[ServiceProcess], tmp_path: Path
) -> None:
    shipped = yaml.safe_load((REPO / "config.yaml").read_text())
    shipped["service"]["port"] = 0
    shipped["producers"][0]["settings"].update(directory=str(REPO), pause=0.2)
    svc = start(started, tmp_path, shipped)

    def processed(queue: str) -> float:
        return svc.metric(f'threadpool_items_processed_total{{pool="scrub",queue="{queue}"}}') or 0

    first = poll("small files hashed", lambda: processed("small"))
    poll("more small files hashed", lambda: processed("small") > first)
    poll("large files hashed in chunks", lambda: processed("large") > 0)
    poll("results tallied", lambda: processed("results") > 0)
    svc.wait_log(r"scrub pass \d+ of \S+: \d+ files")
    assert svc.metric('lockdep_lock_acquisitions_total{lock="ThreadPool::scrub"}')
    svc.signal(signal.SIGTERM)
    assert svc.wait(DEADLINE) == 0


def test_sigterm_during_a_slow_reload_exits_within_the_drain_deadline(
    started: list[ServiceProcess], tmp_path: Path
) -> None:
    svc = start(started, tmp_path, ticking())
    assert svc.get("/health")[0] == 200
    slow = ticking()
    slow["pools"][0]["queues"].append(
        {"name": "slow", "kind": "value", "handler": "tests.service.slow_import:noop"}
    )
    hold = tmp_path / "hold-import"
    hold.touch()  # the new handler's import blocks while this exists (up to 60 s)
    try:
        write(svc.config, slow)
        svc.signal(signal.SIGHUP)
        svc.wait_log(r"SIGHUP: reloading")
        assert svc.get("/health")[0] == 200  # still serving while it loads
        svc.signal(signal.SIGTERM)
        assert svc.wait(DRAIN + STOP_GRACE) == 0  # not the 60 s the import would take
    finally:
        hold.unlink()
    assert "SIGTERM: shutting down" in svc.log() and "reloaded" not in svc.log()


def test_a_configuration_over_the_size_limit_is_rejected_on_reload_unparsed(
    started: list[ServiceProcess], tmp_path: Path
) -> None:
    svc = start(started, tmp_path, ticking())
    assert svc.get("/health")[0] == 200
    with open(svc.config, "r+b") as f:
        f.truncate(50 * 2**20)  # 50 MB (sparse): a parse would take minutes
    svc.signal(signal.SIGHUP)
    svc.wait_log(r"config\.yaml: 52,428,800 bytes, over the limit of 262,144 \(256 KiB\)")
    assert svc.metric('threadpool_config_reloads_total{result="error"}') == 1
    svc.signal(signal.SIGTERM)
    assert svc.wait(DRAIN + DEADLINE) == 0


def test_a_handler_failing_on_every_item_logs_five_tracebacks_and_a_count(
    started: list[ServiceProcess], tmp_path: Path
) -> None:
    d = doc()
    d["pools"][0]["queues"] = [{"name": "bad", "kind": "value", "handler": f"{HANDLERS}:fail"}]
    d["producers"] = [
        {
            "name": "burst",
            "factory": f"{HANDLERS}:Once",
            "settings": {"send": [["main", "bad"]], "times": 300},
        }
    ]
    svc = start(started, tmp_path, d)
    poll(
        "300 failures",
        lambda: svc.metric('threadpool_items_failed_total{pool="main",queue="bad"}') == 300,
    )
    svc.signal(signal.SIGTERM)
    assert svc.wait(DRAIN + DEADLINE) == 0
    log = svc.log()
    assert log.count("Traceback (most recent call last)") == 5
    assert "295 more records with a traceback like this one suppressed in " in log


def test_a_retired_key_is_logged_as_a_warning_at_start_and_ignored(
    started: list[ServiceProcess], tmp_path: Path
) -> None:
    d = ticking()
    d["service"]["scale_interval"] = 0.5  # a file written for the old sampler
    svc = start(started, tmp_path, d)
    assert svc.get("/health") == (200, b"ok\n")
    svc.wait_log(r"config\.yaml: service\.scale_interval: no longer used, ignored: elastic pools")
    svc.signal(signal.SIGTERM)
    assert svc.wait(DRAIN + DEADLINE) == 0
