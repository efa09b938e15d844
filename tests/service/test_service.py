"""service.py, in this process: start, reload (valid, invalid, on a file change), shutdown."""

from __future__ import annotations

import copy
import logging
import os
import socket
import threading
from typing import Any

import pytest

import lockdep
from threadpool.service.httpd import ListenError
from threadpool.service.service import Service

from .conftest import DEADLINE, HANDLERS, Services, doc, poll, request, write


def metric(service: Service, line_start: str) -> float:
    status, _, body = request(service.url, "/metrics")
    assert status == 200
    for line in body.decode().splitlines():
        if line.startswith(line_start + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {line_start} in /metrics")


def with_threads(n: int, **service: Any) -> dict[str, Any]:
    d = doc()
    d["pools"][0]["threads"] = n
    d["service"].update(service)
    return d


def test_started_service_serves_health_metrics_and_lockdep(services: Services) -> None:
    service = services.start(doc())
    assert request(service.url, "/health")[:3:2] == (200, b"ok\n")
    assert metric(service, 'threadpool_threads_target{pool="main"}') == 2
    assert request(service.url, "/lockdep")[0] == 200
    live = service.runtime.live("main")
    assert live is not None and live.pool.heartbeat_map is service.heartbeat_map


def test_reload_applies_a_new_pool_size(services: Services) -> None:
    service = services.start(with_threads(2))
    live = service.runtime.live("main")
    assert live is not None and live.pool.wait_for_threads(2, timeout=DEADLINE)
    write(services.tmp_path / "config.yaml", with_threads(5))
    assert service.reload("test") is True
    assert live.pool.num_threads == 5 and live.pool.wait_for_threads(5, timeout=DEADLINE)
    assert metric(service, 'threadpool_threads_target{pool="main"}') == 5
    assert metric(service, 'threadpool_config_reloads_total{result="success"}') == 1
    assert service.reloads == {"success": 1, "error": 0}


def test_invalid_reload_keeps_the_running_configuration_and_counts_an_error(
    services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    service = services.start(with_threads(2))
    before = service.config
    bad = with_threads(-1)
    bad["pools"][0]["queues"][0]["timout"] = 3
    write(services.tmp_path / "config.yaml", bad)
    with caplog.at_level(logging.ERROR, "threadpool.service"):
        assert service.reload("test") is False
    assert service.config is before
    live = service.runtime.live("main")
    assert live is not None and live.pool.num_threads == 2
    assert "reload (test) rejected, 2 problems; the running configuration stays" in caplog.text
    assert "pools[0].threads: must be an integer 0..1024, got -1" in caplog.text
    assert "pools[0].queues[0].timout: unknown key; did you mean 'timeout'?" in caplog.text
    assert metric(service, 'threadpool_config_reloads_total{result="error"}') == 1
    assert metric(service, 'threadpool_config_reloads_total{result="success"}') == 0
    assert metric(service, "threadpool_config_last_reload_successful") == 0
    write(services.tmp_path / "config.yaml", with_threads(2))
    assert service.reload("test") is True
    assert metric(service, "threadpool_config_last_reload_successful") == 1


def test_a_file_change_reloads_once_per_new_content(services: Services) -> None:
    path = services.tmp_path / "config.yaml"
    service = services.start(with_threads(1))
    assert service.check_file() is False
    os.utime(path)  # touched, same content
    assert service.check_file() is False
    write(path, with_threads(3))
    assert service.check_file() is True and service.reloads == {"success": 1, "error": 0}
    path.write_text("pools: [")
    assert service.check_file() is False
    assert service.check_file() is False  # the same bad content is not counted again
    assert service.reloads == {"success": 1, "error": 1}
    path.unlink()
    assert service.check_file() is False and service.reloads["error"] == 2
    live = service.runtime.live("main")
    assert live is not None and live.pool.num_threads == 3


def test_listen_address_and_port_cannot_change_on_reload(
    services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    service = services.start(doc())
    write(services.tmp_path / "config.yaml", with_threads(2, port=1))
    with caplog.at_level(logging.ERROR, "threadpool.service"):
        assert service.reload("test") is False
    assert "service.port: cannot change on reload (restart the service); it is 0" in caplog.text
    assert service.reloads["error"] == 1


def test_reload_adds_and_removes_pools_and_queues(services: Services) -> None:
    service = services.start(doc())
    d = doc()
    d["pools"][0]["queues"].append(
        {"name": "more", "kind": "pointer", "handler": f"{HANDLERS}:release"}
    )
    d["pools"].append(copy.deepcopy(d["pools"][0]) | {"name": "second"})
    write(services.tmp_path / "config.yaml", d)
    assert service.reload("test")
    event = threading.Event()
    assert service.runtime.submit("second", "more", event) and event.wait(DEADLINE)
    del d["pools"][0]
    write(services.tmp_path / "config.yaml", d)
    assert service.reload("test")
    assert [p.name for p in service.runtime.pools()] == ["second"]
    assert service.runtime.submit("main", "ticks", 1) is False


def test_reload_changes_lockdep_response_and_log_level(services: Services) -> None:
    d = doc()
    d["lockdep"] = {"on_violation": "log", "stats": False}
    service = services.start(d, manage_lockdep=True)
    assert lockdep.settings()["on_violation"] == "log" and not lockdep.settings()["stats"]
    d["lockdep"] = {"on_violation": "raise", "stats": True, "wait_timeout": 5}
    d["service"]["log_level"] = "error"
    write(services.tmp_path / "config.yaml", d)
    assert service.reload("test")
    settings = lockdep.settings()
    assert (settings["on_violation"], settings["stats"], settings["wait_timeout"]) == (
        "raise",
        True,
        5.0,
    )
    assert logging.getLogger().level == logging.ERROR


def test_reload_restarts_a_changed_producer_and_keeps_an_unchanged_one(
    services: Services,
) -> None:
    d = doc()
    ticker = {"factory": f"{HANDLERS}:Ticker", "settings": {"queue": "ticks"}}
    d["producers"] = [{"name": "a", **ticker}, {"name": "b", **ticker}]
    service = services.start(d)
    a, b = service._producers["a"], service._producers["b"]
    d["producers"][1]["settings"] = {"queue": "ticks", "interval": 0.5}
    write(services.tmp_path / "config.yaml", d)
    assert service.reload("test")
    assert service._producers["a"] is a and a.alive
    assert service._producers["b"] is not b and not b.alive and service._producers["b"].alive


def test_shutdown_stops_producers_first_then_drains(services: Services) -> None:
    d = doc()
    d["producers"] = [
        {"name": "t", "factory": f"{HANDLERS}:Ticker", "settings": {"queue": "ticks"}}
    ]
    service = services.start(d)
    producer = service._producers["t"]
    assert service.shutdown() == {}
    assert not producer.alive and service.runtime.pools() == []
    with pytest.raises(OSError):
        request(service.url, "/health", timeout=5)


def test_a_port_in_use_fails_the_start_with_nothing_left_running(services: Services) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        d = doc()
        d["service"]["port"] = taken.getsockname()[1]
        threads = threading.active_count()
        with pytest.raises(ListenError, match="Address already in use"):
            services.start(d)
        assert threading.active_count() == threads


def test_heartbeat_file_is_touched_while_healthy_relative_to_the_config(
    services: Services,
) -> None:
    d = doc()
    d["heartbeat"] = {"interval": 0.05, "file": "alive"}
    service = services.start(d)
    assert service.heartbeat_map.stats()["checker_running"]
    poll("a heartbeat check", lambda: metric(service, "threadpool_heartbeat_checks_total") >= 2)
    assert (services.tmp_path / "alive").is_file()


def test_an_unchanged_file_is_not_read_at_each_look(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    from threadpool.service import reload as reload_module

    path = services.tmp_path / "config.yaml"
    service = services.start(with_threads(1))
    reads: list[str] = []
    real = reload_module.read_file

    def counting(p: str) -> bytes:
        reads.append(p)
        return real(p)

    monkeypatch.setattr(reload_module, "read_file", counting)
    for _ in range(5):
        assert service.check_file() is False
    assert reads == []  # same metadata: not read, not hashed
    os.utime(path, ns=(1, 1))  # the metadata change: read once, same content, no reload
    assert service.check_file() is False and len(reads) == 1
    assert service.check_file() is False and len(reads) == 1
    assert service.reloads == {"success": 0, "error": 0}


@pytest.mark.parametrize("dangling", [False, True], ids=["to-a-file", "dangling"])
def test_a_symlinked_heartbeat_file_is_refused(
    services: Services, caplog: pytest.LogCaptureFixture, dangling: bool
) -> None:
    target = services.tmp_path / "victim"
    if not dangling:
        target.write_text("precious\n")
        os.utime(target, ns=(10**9, 10**9))
    (services.tmp_path / "alive").symlink_to(target)
    d = doc()
    d["heartbeat"] = {"interval": 0.05, "file": "alive"}
    with caplog.at_level(logging.WARNING, "threadpool"):
        service = services.start(d)
        poll("heartbeat checks", lambda: metric(service, "threadpool_heartbeat_checks_total") >= 3)
    if dangling:
        assert not target.exists()  # not created through the link
    else:
        assert target.stat().st_mtime_ns == 10**9 and target.read_text() == "precious\n"
    assert (services.tmp_path / "alive").is_symlink()
    refusals = [r for r in caplog.records if "alive: it is a symbolic link" in r.getMessage()]
    assert len(refusals) == 1, caplog.text  # once, not at every check


def test_the_heartbeat_file_is_created_private(services: Services) -> None:
    d = doc()
    d["heartbeat"] = {"interval": 0.05, "file": "alive"}
    service = services.start(d)
    poll("a heartbeat check", lambda: metric(service, "threadpool_heartbeat_checks_total") >= 2)
    path = services.tmp_path / "alive"
    poll("the file", path.exists)
    assert path.stat().st_mode & 0o077 == 0


def test_a_dead_producer_turns_health_503_and_its_series_0_until_a_reload(
    services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    d = doc()
    d["producers"] = [
        {"name": "ok", "factory": f"{HANDLERS}:Ticker", "settings": {"queue": "ticks"}},
        {"name": "broken", "factory": f"{HANDLERS}:Broken"},
    ]
    service = services.start(d)
    assert metric(service, 'threadpool_producer_up{producer="ok"}') == 1
    poll("/health 503", lambda: request(service.url, "/health")[0] == 503)
    status, _, body = request(service.url, "/health")
    assert status == 503
    assert body == b"producer broken: run() raised RuntimeError: Broken.run fails\n"
    assert metric(service, 'threadpool_producer_up{producer="broken"}') == 0
    assert metric(service, 'threadpool_producer_up{producer="ok"}') == 1
    assert not service.healthy()
    dead = service._producers["broken"]
    write(services.tmp_path / "config.yaml", d)  # unchanged: a reload restarts the dead one
    with caplog.at_level(logging.ERROR, "threadpool.service"):
        assert service.reload("SIGHUP")
    assert service._producers["broken"] is not dead
    poll("the new one dead too", lambda: service._producers["broken"].death is not None)
    assert "producer broken: run() raised; dead until the next reload" in caplog.text
    d["producers"].pop()
    write(services.tmp_path / "config.yaml", d)
    assert service.reload("SIGHUP")
    assert request(service.url, "/health")[:3:2] == (200, b"ok\n")
    assert service.healthy()
