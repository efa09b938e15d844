"""producers.py: producers run on their own threads, feed queues by name, stop when asked."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import pytest

from threadpool.service.checks import Ref
from threadpool.service.config import ProducerConfig
from threadpool.service.producers import ProducerContext, ProducerThread, stop_all

from .conftest import DEADLINE
from .handlers import Broken, Ticker


class Router:
    def __init__(self, want: int = 3) -> None:
        self.items: list[tuple[str, str, Any]] = []
        self.enough = threading.Event()
        self.want = want

    def submit(
        self, pool: str, queue: str, item: Any, *, key: Any = None, deadline: float | None = None
    ) -> bool:
        self.items.append((pool, queue, item))
        self.options = {"key": key, "deadline": deadline}
        if len(self.items) >= self.want:
            self.enough.set()
        return queue != "missing"

    def queued(self, pool: str, queue: str) -> int | None:
        return 7 if queue == "q" else None


def producer(instance: object, name: str = "p") -> ProducerConfig:
    return ProducerConfig(name=name, factory=Ref("tests.service.handlers:X"), instance=instance)


def test_producer_feeds_queues_by_name_until_stopped() -> None:
    router = Router()
    thread = ProducerThread(
        producer(Ticker({"pool": "main", "queue": "q", "interval": 0.001}, base_dir=Path("/"))),
        router,
    )
    thread.start()
    try:
        assert router.enough.wait(DEADLINE)
    finally:
        assert thread.stop(DEADLINE)
    assert not thread.alive
    assert {(p, q) for p, q, _ in router.items} == {("main", "q")}
    assert [item.number for _, _, item in router.items[:3]] == [1, 2, 3]


def test_context_forwards_to_the_router_and_reports_stopping() -> None:
    ctx = ProducerContext("p", Router())
    assert ctx.submit("main", "q", 1) is True and ctx.submit("main", "missing", 1) is False
    assert ctx.queued("main", "q") == 7 and ctx.queued("main", "other") is None
    router = Router()
    assert ProducerContext("p", router).submit("main", "q", 1, key="k", deadline=2.5)
    assert router.options == {"key": "k", "deadline": 2.5}
    assert not ctx.stopping and ctx.wait(0) is False
    ctx._stop.set()
    assert ctx.stopping and ctx.wait(DEADLINE) is True


def test_run_that_raises_is_logged_and_the_thread_ends(caplog: pytest.LogCaptureFixture) -> None:
    thread = ProducerThread(producer(Broken({}, base_dir=Path("/")), "broken"), Router())
    with caplog.at_level(logging.ERROR, "threadpool.service"):
        thread.start()
        assert thread.stop(DEADLINE)
    assert "producer broken: run() raised; dead until the next reload" in caplog.text
    assert "RuntimeError: Broken.run fails" in caplog.text
    assert thread.death == "run() raised RuntimeError: Broken.run fails"


class Quitter:
    """Returns from run() at once."""

    def run(self, ctx: ProducerContext) -> None:
        pass


def test_run_that_returns_before_being_asked_to_stop_is_dead(
    caplog: pytest.LogCaptureFixture,
) -> None:
    thread = ProducerThread(producer(Quitter(), "quitter"), Router())
    with caplog.at_level(logging.ERROR, "threadpool.service"):
        thread.start()
        thread._thread.join(DEADLINE)
    assert thread.death == "run() returned before it was asked to stop"
    assert "producer quitter: run() returned before it was asked to stop" in caplog.text


def test_run_that_returns_when_asked_to_stop_is_not_dead() -> None:
    router = Router(want=1)
    thread = ProducerThread(
        producer(Ticker({"pool": "main", "queue": "q", "interval": 0.001}, base_dir=Path("/"))),
        router,
    )
    thread.start()
    assert router.enough.wait(DEADLINE)
    assert thread.death is None
    assert thread.stop(DEADLINE) and thread.death is None


class Stubborn:
    """Ignores ctx.stopping until let go."""

    def __init__(self) -> None:
        self.go = threading.Event()
        self.running = threading.Event()

    def run(self, ctx: ProducerContext) -> None:
        self.running.set()
        self.go.wait(DEADLINE)


def test_producer_that_does_not_stop_is_reported_and_left_behind(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stubborn = Stubborn()
    thread = ProducerThread(producer(stubborn, "stubborn"), Router())
    thread.start()
    assert stubborn.running.wait(DEADLINE)
    try:
        with caplog.at_level(logging.WARNING, "threadpool.service"):
            assert thread.stop(0.05) is False
        assert "producer stubborn: still running 0.05s after being asked to stop" in caplog.text
    finally:
        stubborn.go.set()
        assert thread.stop(DEADLINE)


def test_stop_before_start_returns_at_once() -> None:
    thread = ProducerThread(producer(Broken({}, base_dir=Path("/"))), Router())
    assert thread.stop(DEADLINE) is True


class Obliging:
    """Stops when asked, saying when it saw it."""

    def __init__(self) -> None:
        self.saw_stop = threading.Event()

    def run(self, ctx: ProducerContext) -> None:
        ctx.wait(3600)
        self.saw_stop.set()


def test_stop_all_asks_every_producer_at_once_within_one_timeout() -> None:
    stubborn, obliging = Stubborn(), Obliging()
    first = ProducerThread(producer(stubborn, "stubborn"), Router())
    second = ProducerThread(producer(obliging, "obliging"), Router())
    first.start()
    second.start()
    assert stubborn.running.wait(DEADLINE)
    stopper = threading.Thread(target=stop_all, args=([first, second], DEADLINE))
    stopper.start()
    try:
        # Asked while the first still holds on: not after the first's wait ran out.
        assert obliging.saw_stop.wait(DEADLINE / 2)
    finally:
        stubborn.go.set()
        stopper.join(DEADLINE)
    assert not stopper.is_alive() and not first.alive and not second.alive
