"""2,000 connections at once: the service's listener vs prometheus_client's own server.

Both serve the same small registry; a single thread opens 2,000 connections at once
(non-blocking sockets and a selector, ``tests/service/burst.py``), sends ``GET /metrics``
on each and reads the answers. Printed: how many were answered 200 and in how long. The
peer, ``prometheus_client.start_http_server``, listens with the standard library's backlog
of 5, as the service did before: the kernel drops the SYNs that do not fit and the clients
retry them one, three, seven... seconds later. Target: the service answers all 2,000.
Run: python benchmarks/connect_burst.py [--rounds N] [--clients N] [--timeout S]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from prometheus_client import CollectorRegistry, Counter, start_http_server  # noqa: E402

from tests.service.burst import BurstResult, burst  # noqa: E402
from threadpool.service.httpd import HTTPService  # noqa: E402


def registry() -> CollectorRegistry:
    reg = CollectorRegistry()
    counter = Counter("bench_items", "Items.", ["queue"], registry=reg)
    for q in range(20):
        counter.labels(str(q)).inc(q)
    return reg


def line(label: str, results: list[BurstResult], clients: int) -> str:
    answered = statistics.median(r.statuses.get(200, 0) for r in results)
    seconds = statistics.median(r.seconds for r in results)
    return f"{label:>28}: {answered:6.0f} of {clients} answered, in {seconds:6.2f} s (median)"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=2000)
    parser.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(soft, 4 * args.clients + 256), hard), hard))
    reg = registry()
    ours = HTTPService("127.0.0.1", 0, reg, list)
    ours.start()
    server, thread = start_http_server(0, addr="127.0.0.1", registry=reg)
    peer_port = server.server_address[1]
    mine: list[BurstResult] = []
    theirs: list[BurstResult] = []
    try:
        for _ in range(args.rounds):
            host, port = ours.address
            mine.append(burst(host, port, args.clients, "/metrics", args.timeout))
            theirs.append(burst("127.0.0.1", peer_port, args.clients, "/metrics", args.timeout))
    finally:
        ours.close()
        server.shutdown()
        server.server_close()
        thread.join(30)
    print(line("service listener (1024)", mine, args.clients))
    print(line("prometheus_client server (5)", theirs, args.clients))
    ratio = statistics.median(r.answered for r in mine) / max(
        statistics.median(r.answered for r in theirs), 1
    )
    print(f"answered within {args.timeout:g} s, service / prometheus_client: {ratio:.1f}x")


if __name__ == "__main__":
    main()
