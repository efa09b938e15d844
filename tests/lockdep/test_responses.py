"""What happens on a violation: raise, log once, abort, or a callable; failures contained."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap

import pytest

import lockdep


def make_inversion() -> tuple[lockdep.Mutex, lockdep.Mutex]:
    a, b = lockdep.Mutex("A"), lockdep.Mutex("B")
    with a, b:
        pass
    return a, b


def test_raise_leaves_the_lock_untaken(collected: list[lockdep.Violation]) -> None:
    lockdep.configure(on_violation="raise")
    a, b = make_inversion()
    with b:
        with pytest.raises(lockdep.LockOrderError) as info:
            a.lock()
        assert not a.is_locked()
        assert [h.name for h in lockdep.held_locks()] == ["B"]
    assert isinstance(info.value, lockdep.LockdepError) and isinstance(info.value, RuntimeError)
    assert info.value.violation.report == str(info.value)


def test_log_reports_each_distinct_violation_once(caplog: pytest.LogCaptureFixture) -> None:
    lockdep.configure(on_violation="log")
    a, b = make_inversion()
    c = lockdep.Mutex("C")
    with caplog.at_level(logging.ERROR, logger="lockdep"):
        for _ in range(5):
            with b, a:  # the same inversion, five times: taken each time
                assert a.is_locked_by_me()
        with c, b, a:  # again, through another held chain
            pass
    records = [r for r in caplog.records if r.name == "lockdep"]
    assert len(records) == 1, [r.getMessage()[:80] for r in records]
    assert "circular locking dependency" in records[0].getMessage()
    assert "A -> B" in records[0].getMessage()
    stats = lockdep.stats()
    assert stats["violations"] == 6 and stats["violations_by_kind"]["order"] == 6
    assert len(lockdep.violations()) == 1


def test_log_reports_distinct_violations_separately(caplog: pytest.LogCaptureFixture) -> None:
    lockdep.configure(on_violation="log")
    a, b = make_inversion()
    a2 = lockdep.Mutex("A")
    with caplog.at_level(logging.ERROR, logger="lockdep"):
        with b, a:
            pass
        with a, a2:  # recursive: another violation
            pass
    kinds = [v.kind for v in lockdep.violations()]
    assert kinds == ["order", "recursive"]
    assert len([r for r in caplog.records if r.name == "lockdep"]) == 2


def test_callable_receives_every_occurrence(collected: list[lockdep.Violation]) -> None:
    a, b = make_inversion()
    for _ in range(3):
        with b, a:
            pass
    assert [v.kind for v in collected] == ["order"] * 3
    v = collected[0]
    assert v.classes == ("A", "B") and v.thread_name == "MainThread"
    assert [h.name for h in v.held] == ["B"]
    assert [(c.source, c.target) for c in v.chain] == [("A", "B")]
    assert v.chain[0].info is not None and v.chain[0].info.from_site.function == "make_inversion"
    assert v.as_dict()["chain"][0]["from"] == "A"


def test_failing_callable_is_contained(caplog: pytest.LogCaptureFixture) -> None:
    def broken(v: lockdep.Violation) -> None:
        raise KeyError("callback bug")

    lockdep.configure(on_violation=broken)
    a, b = make_inversion()
    with caplog.at_level(logging.ERROR, logger="lockdep"):
        with b, a:  # goes on: the program is not taken down by its callback
            pass
    assert any("on_violation callable failed" in r.getMessage() for r in caplog.records)
    assert "callback bug" in caplog.text


def test_logging_through_tracked_locks_does_not_deadlock(caplog: pytest.LogCaptureFixture) -> None:
    """A log handler that takes tracked locks, in an inverted order, while lockdep
    reports: lockdep's own reporting must neither recurse nor deadlock."""
    x, y = lockdep.Mutex("handler-x"), lockdep.Mutex("handler-y")
    with x, y:
        pass

    class LockingHandler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            with y, x:  # an inversion of its own, inside lockdep's report
                pass

    handler = LockingHandler()
    logger = logging.getLogger("lockdep")
    logger.addHandler(handler)
    lockdep.configure(on_violation="log")
    try:
        a, b = make_inversion()
        with b, a:
            pass
    finally:
        logger.removeHandler(handler)
    assert [v.kind for v in lockdep.violations()] == ["order"]


def test_report_formatting_failure_is_contained(collected: list[lockdep.Violation]) -> None:
    a, b = make_inversion()
    import lockdep.report

    original = lockdep.report.format_order
    lockdep.report.format_order = lambda *args: 1 / 0  # type: ignore[assignment]
    try:
        with b, a:
            pass
    finally:
        lockdep.report.format_order = original
    (v,) = collected
    assert "full report could not be built" in v.report and "ZeroDivisionError" in v.report


def test_violation_is_delivered_when_reports_cannot_be_imported(
    collected: list[lockdep.Violation], monkeypatch: pytest.MonkeyPatch
) -> None:
    # report is imported on the first violation; late in the interpreter's
    # shutdown that import can fail, and the violation must still go out.
    a, b = make_inversion()
    monkeypatch.delattr(lockdep, "report", raising=False)
    monkeypatch.setitem(sys.modules, "lockdep.report", None)  # import fails
    with b, a:
        pass
    (v,) = collected
    assert v.kind == "order" and set(v.classes) == {"A", "B"}
    assert "full report could not be built" in v.report and "lockdep.report" in v.report


@pytest.mark.slow
def test_abort_writes_the_report_and_aborts() -> None:
    program = textwrap.dedent(
        """
        import lockdep
        lockdep.configure(on_violation="abort")
        a, b = lockdep.Mutex("A"), lockdep.Mutex("B")
        with a, b:
            pass
        with b, a:
            pass
        print("not reached")
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode < 0 or proc.returncode == 134, proc.returncode  # SIGABRT
    assert "possible circular locking dependency detected" in proc.stderr
    assert "not reached" not in proc.stdout


@pytest.mark.parametrize(
    ("kwargs", "error", "text"),
    [
        ({"on_violation": "explode"}, ValueError, "'raise', 'log', 'abort' or a callable"),
        ({"max_classes": 0}, ValueError, "max_classes must be an int >= 1"),
        ({"max_classes": 2.5}, TypeError, "max_classes must be an int >= 1"),
        ({"enabled": "yes"}, TypeError, "enabled must be True or False"),
        ({"stats": 1}, TypeError, "stats must be True or False"),
        ({"wait_timeout": 0}, ValueError, "wait_timeout must be a number of seconds > 0"),
        ({"wait_timeout": "1"}, TypeError, "wait_timeout must be a number of seconds > 0"),
        ({"stats": True, "on_violation": "nope"}, ValueError, "on_violation"),
    ],
)
def test_bad_configuration_is_rejected_whole(kwargs: dict, error: type, text: str) -> None:
    before = lockdep.settings()
    with pytest.raises(error, match=text):
        lockdep.configure(**kwargs)
    assert lockdep.settings() == before


def test_register_and_unregister() -> None:
    cid = lockdep.register("by-hand")
    assert lockdep.register("by-hand") == cid
    lockdep.unregister(cid)
    lockdep.unregister(cid)
    with pytest.raises(ValueError, match="no live registration"):
        lockdep.unregister(cid)
    with pytest.raises(TypeError, match="non-empty str"):
        lockdep.register(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="class id must be an int"):
        lockdep.unregister("by-hand")  # type: ignore[arg-type]
