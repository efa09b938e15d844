"""The README's service configuration example loads and runs: its elastic pool, bounded
and timed queue, sharded queue, queue of calls and producer, with handlers of a package
``myapp`` written for the test."""

from __future__ import annotations

import re
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from threadpool import CallQueue, ShardedWorkQueue, WorkQueueVal

from .conftest import BASE, DEADLINE, REPO, Services, poll

MYAPP = """
import threading

DONE = threading.Event()
SEEN = []


def handle(order, handle):
    SEEN.append(("incoming", order))


def late(order):
    SEEN.append(("late", order))


def account_of(order):
    return order["account"]


def post(order, handle):
    SEEN.append(("per_account", order["n"]))


class Feed:
    def __init__(self, settings, *, base_dir):
        pass

    def run(self, ctx):
        for n in range(3):
            ctx.submit("orders", "incoming", {"n": n})
            ctx.submit("orders", "per_account", {"account": n % 2, "n": n})
        total = ctx.executor("orders", "calls").submit(sum, [1, 2, 3]).result(timeout=60)
        SEEN.append(("calls", total))
        DONE.set()
        ctx.wait(3600)
"""


def readme_config() -> dict[str, Any]:
    text = (REPO / "README.md").read_text()
    match = re.search(r"<!-- readme-test: service-config -->\n```yaml\n(.*?)```", text, re.S)
    assert match, "the README's service configuration example is missing"
    document: dict[str, Any] = yaml.safe_load(match.group(1))
    return document


@pytest.fixture
def myapp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    package = tmp_path / "myapp"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "orders.py").write_text(textwrap.dedent(MYAPP))
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        import myapp.orders  # type: ignore[import-not-found]

        yield myapp.orders
    finally:
        sys.modules.pop("myapp.orders", None)
        sys.modules.pop("myapp", None)


def test_the_readme_service_configuration_runs(services: Services, myapp: Any) -> None:
    document = {"service": BASE["service"], **readme_config()}
    service = services.start(document)
    live = service.runtime.live("orders")
    assert live is not None
    pool = live.pool
    assert (pool.elastic, pool.min_threads, pool.max_threads, pool.idle_timeout) == (
        True,
        2,
        8,
        30.0,
    )
    incoming = live.queues["incoming"][0]
    assert isinstance(incoming, WorkQueueVal)
    assert (incoming.max_items, incoming.policy, incoming.block_timeout) == (10000, "block", 2)
    assert incoming.deadline == 60
    assert isinstance(live.queues["per_account"][0], ShardedWorkQueue)
    assert isinstance(live.queues["calls"][0], CallQueue)
    assert myapp.DONE.wait(DEADLINE)
    assert pool.drain(timeout=DEADLINE)
    poll("every item seen", lambda: len(myapp.SEEN) == 7)
    assert sorted(n for where, n in myapp.SEEN if where == "per_account") == [0, 1, 2]
    assert ("calls", 6) in myapp.SEEN
