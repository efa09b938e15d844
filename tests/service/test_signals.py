"""signals.py: SIGTERM, SIGINT and SIGHUP arrive as a list the main loop reads, in order."""

from __future__ import annotations

import os
import signal

from threadpool.service.signals import SignalPipe

from .conftest import DEADLINE


def test_signals_are_read_in_order_and_none_lost() -> None:
    with SignalPipe() as signals:
        os.kill(os.getpid(), signal.SIGHUP)
        os.kill(os.getpid(), signal.SIGINT)
        got: list[signal.Signals] = []
        while len(got) < 2:
            new = signals.wait(DEADLINE)
            assert new, "no signal arrived"
            got += new
        assert got == [signal.SIGHUP, signal.SIGINT]
        assert signals.wait(0) == []


def test_a_signal_before_the_wait_is_kept() -> None:
    with SignalPipe() as signals:
        os.kill(os.getpid(), signal.SIGTERM)
        assert signals.wait(DEADLINE) == [signal.SIGTERM]


def test_previous_handlers_come_back() -> None:
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    with SignalPipe():
        assert signal.getsignal(signal.SIGHUP) is not before[signal.SIGHUP]
    assert {s: signal.getsignal(s) for s in before} == before
