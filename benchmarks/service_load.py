"""The service under load, as an operator would see it: scrape latency and a connection burst.

Runs ``python -m threadpool serve`` twice on the same configuration - idle (no producer)
and loaded (a producer keeping three queues of 4 workers full of small hashing items) -
and, in each, scrapes ``/metrics`` ten times a second for ``--seconds`` as Prometheus
does (a new connection each time, OpenMetrics and gzip asked for), then opens 2,000
connections to ``/health`` at once. Under load it also reloads the configuration
(alternating pool sizes) ``--reloads`` times. Prints the scrape latency percentiles of
both runs and their ratio (the peer of a loaded scrape is an idle one, in the same run),
the burst's answered connections and time, items processed per second, the reloads
applied, and lockdep's violations (with ``--instrument``, the handlers' own locks are
validated too: there must be none).
Run: python benchmarks/service_load.py [--seconds 60] [--reloads 50] [--instrument]
"""

from __future__ import annotations

import argparse
import gzip
import json
import resource
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.service.burst import burst  # noqa: E402
from tests.service.conftest import request  # noqa: E402
from tests.service.process import ServiceProcess  # noqa: E402

LOAD = "benchmarks.workloads.service_load"
ACCEPT = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"


def config(threads: int, producers: bool, instrument: bool) -> dict[str, Any]:
    queues = [
        {
            "name": "value",
            "kind": "value",
            "handler": f"{LOAD}:checksum",
            "finish": f"{LOAD}:tally",
        },
        {"name": "batch", "kind": "batch", "handler": f"{LOAD}:checksums", "batch_size": 32},
        {"name": "pointer", "kind": "pointer", "handler": f"{LOAD}:checksum"},
    ]
    return {
        "service": {"port": 0, "log_level": "info", "reload_check_interval": 0},
        "heartbeat": {"interval": 1},
        "lockdep": {"instrument": instrument, "on_violation": "log", "stats": True},
        "pools": [{"name": "work", "threads": threads, "queues": queues}],
        "producers": [
            {
                "name": "flood",
                "factory": f"{LOAD}:Flood",
                "settings": {"queues": [["work", q["name"]] for q in queues], "depth": 2000},
            }
        ]
        if producers
        else [],
    }


def get(svc: ServiceProcess, path: str, headers: dict[str, str] | None = None) -> bytes:
    status, got, body = request(svc.url, path, headers=headers, timeout=30)
    assert status == 200, (path, status)
    return gzip.decompress(body) if got.get("Content-Encoding") == "gzip" else body


def total(svc: ServiceProcess, name: str) -> float:
    """The sum of every series of ``name`` (its value, with no labels)."""
    lines = get(svc, "/metrics").decode().splitlines()
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith((name + "{", name + " "))
    )


def scrape_for(svc: ServiceProcess, seconds: float, rate: float = 10.0) -> list[float]:
    """Scrape /metrics ``rate`` times a second for ``seconds``; each latency in ms."""
    latencies = []
    period, start = 1.0 / rate, time.monotonic()
    pause = threading.Event()
    n = 0
    while time.monotonic() - start < seconds:
        t0 = time.perf_counter()
        body = get(svc, "/metrics", {"Accept": ACCEPT, "Accept-Encoding": "gzip"})
        latencies.append((time.perf_counter() - t0) * 1000)
        assert body.endswith(b"# EOF\n")
        n += 1
        pause.wait(max(start + n * period - time.monotonic(), 0))
    return latencies


def percentiles(ms: list[float]) -> str:
    q = statistics.quantiles(ms, n=100, method="inclusive")
    return f"p50 {q[49]:7.2f} ms  p99 {q[98]:7.2f} ms  max {max(ms):7.2f} ms  ({len(ms)} scrapes)"


def reloader(svc: ServiceProcess, count: int, seconds: float, base: dict[str, Any]) -> None:
    pause = threading.Event()
    for i in range(count):
        doc = json.loads(json.dumps(base))
        doc["pools"][0]["threads"] = 3 + i % 3
        svc.config.write_text(yaml.safe_dump(doc))
        svc.signal(signal.SIGHUP)
        pause.wait(seconds / (count + 1))


def run(label: str, args: argparse.Namespace, producers: bool) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        document = config(4, producers, args.instrument)
        svc = ServiceProcess(Path(tmp), document)
        try:
            host, port = svc.url.removeprefix("http://").rsplit(":", 1)
            threading.Event().wait(1.0)  # the pools started, the flood filled its queues
            before = total(svc, "threadpool_items_processed_total")
            t0 = time.monotonic()
            thread = None
            if producers and args.reloads:
                thread = threading.Thread(
                    target=reloader, args=(svc, args.reloads, args.seconds, document)
                )
                thread.start()
            latencies = scrape_for(svc, args.seconds)
            if thread is not None:
                thread.join()
            elapsed = time.monotonic() - t0
            items = total(svc, "threadpool_items_processed_total") - before
            result = burst(host, int(port), 2000, "/health", timeout=60)
            reloads = total(svc, 'threadpool_config_reloads_total{result="success"}')
            errors = total(svc, 'threadpool_config_reloads_total{result="error"}')
            violations = json.loads(get(svc, "/lockdep"))["violations"]
            classes = total(svc, "lockdep_lock_classes")
            print(f"{label:>7}: scrape {percentiles(latencies)}")
            print(
                f"{'':>7}  burst: {result.statuses.get(200, 0)} of 2000 connections answered "
                f"200 in {result.seconds:.2f} s (errors: {result.errors or 'none'})"
            )
            print(
                f"{'':>7}  {items / elapsed:,.0f} items/s; reloads applied {reloads:.0f}, "
                f"rejected {errors:.0f}; lockdep: {classes:.0f} classes, "
                f"{len(violations)} violations"
            )
            for v in violations:
                print(v["report"])
            svc.signal(signal.SIGTERM)
            status = svc.wait(60)
            if status != 0:
                print(f"exit status {status}:\n{svc.log()[-3000:]}")
        finally:
            svc.stop()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--reloads", type=int, default=50)
    parser.add_argument("--instrument", action="store_true")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(soft, 8192), hard), hard))
    idle = run("idle", args, producers=False)
    loaded = run("loaded", args, producers=True)
    p99 = lambda ms: statistics.quantiles(ms, n=100, method="inclusive")[98]  # noqa: E731
    print(f"scrape p99 loaded / idle: {p99(loaded) / p99(idle):.2f}x")


if __name__ == "__main__":
    main()
