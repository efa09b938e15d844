"""Statistics (stats=True) and long-wait reports (wait_timeout)."""

from __future__ import annotations

import json
import logging
import threading

import lockdep


def test_stats_off_by_default_and_counts_nothing() -> None:
    m = lockdep.Mutex("m")
    with m:
        pass
    s = lockdep.stats()
    assert s["locks"] == {} and s["cache_hits"] is None and s["mode"] == "fast"


def test_acquisitions_contentions_wait_and_hold() -> None:
    # The holder lets go only once lockdep reports that the main thread has waited
    # (wait_timeout): so the main thread's acquisition is contended, whatever the timing.
    holding, release = threading.Event(), threading.Event()
    lockdep.configure(stats=True, wait_timeout=0.01, on_violation=lambda v: release.set())
    m = lockdep.Mutex("stat")

    def holder() -> None:
        with m:
            holding.set()
            release.wait(10)

    t = threading.Thread(target=holder)
    t.start()
    assert holding.wait(10)
    with m:
        pass
    t.join(10)
    assert not t.is_alive()
    for _ in range(3):
        with m:
            pass
    s = lockdep.stats()["locks"]["stat"]
    assert s["acquisitions"] == 5
    assert s["contentions"] == 1
    assert s["wait_seconds_total"] >= 0.01 and s["wait_seconds_max"] == s["wait_seconds_total"]
    assert s["hold_seconds_max"] >= 0.01  # the holder held the lock all that time
    assert s["hold_seconds_total"] >= s["hold_seconds_max"]
    json.dumps(lockdep.stats())


def test_stats_of_exited_threads_are_kept() -> None:
    lockdep.configure(stats=True)
    m = lockdep.Mutex("m")

    def work() -> None:
        for _ in range(10):
            with m:
                pass

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert lockdep.stats()["locks"]["m"]["acquisitions"] == 40


def test_cache_hits_are_counted_with_stats_on() -> None:
    lockdep.configure(stats=True)
    a, b = lockdep.Mutex("A"), lockdep.Mutex("B")
    before = lockdep.stats()  # (under install(), the session's own locks count too)
    for _ in range(10):
        with a, b:
            pass
    s = lockdep.stats()
    assert s["checks"] - before["checks"] == 2  # [] + A and [A] + B, validated once each
    assert s["cache_hits"] - before["cache_hits"] == 18


def test_graph_and_stats_are_json() -> None:
    a, b = lockdep.Mutex("A"), lockdep.Mutex("B")
    with a, b.nested(2):
        pass
    data = json.loads(json.dumps(lockdep.graph()))
    (edge,) = data["edges"]
    assert (edge["from"], edge["to"], edge["to_subclass"]) == ("A", "B", 2)
    assert edge["thread"] == "MainThread" and "test_graph_and_stats_are_json" in edge["to_site"]
    assert {c["name"] for c in data["classes"]} >= {"A", "B"}
    json.dumps(lockdep.stats())


def test_wait_timeout_names_the_holder_and_its_stack(collected: list[lockdep.Violation]) -> None:
    lockdep.configure(wait_timeout=0.05)
    m = lockdep.Mutex("slow")
    holding = threading.Event()
    reported = threading.Event()

    def stuck_in_holder() -> None:
        with m:
            holding.set()
            reported.wait(10)

    lockdep.configure(on_violation=lambda v: (collected.append(v), reported.set()))
    t = threading.Thread(target=stuck_in_holder, name="holder-thread")
    t.start()
    assert holding.wait(10)
    with m:  # waits past 0.05 s, is reported, then gets the lock once the holder lets go
        pass
    t.join(10)
    assert not t.is_alive()
    (v,) = collected
    assert v.kind == "wait_timeout" and v.classes == ("slow",)
    assert "holder-thread" in v.report
    assert "stuck_in_holder" in v.report, "the holder's current stack is shown"
    assert "The wait goes on." in v.report


def test_wait_timeout_in_raise_mode_is_logged_not_raised() -> None:
    lockdep.configure(wait_timeout=0.02)  # on_violation stays "raise"
    m = lockdep.Mutex("slow")
    holding, go = threading.Event(), threading.Event()
    messages: list[str] = []

    class Release(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())
            go.set()

    def holder() -> None:
        with m:
            holding.set()
            go.wait(10)

    handler = Release()
    logging.getLogger("lockdep").addHandler(handler)
    t = threading.Thread(target=holder)
    t.start()
    try:
        assert holding.wait(10)
        with m:  # not raised: the wait goes on until the holder lets go
            pass
    finally:
        logging.getLogger("lockdep").removeHandler(handler)
        go.set()
        t.join(10)
    assert any("lock wait exceeded" in text for text in messages)
