"""HeartbeatMap and TPHandle: Ceph's heartbeat_map scenarios, grace and suicide, the
checker thread and its heartbeat file, the default suicide action (in a subprocess)."""

from __future__ import annotations

import json
import logging
import os
import resource
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from threadpool import HeartbeatHandle, HeartbeatMap, TPHandle, WorkQueueVal
from threadpool.heartbeat import limits_of

from .conftest import JOIN, FakeClock, Harness, wait

REPO = Path(__file__).resolve().parents[2]


class Recorder:
    """A suicide action that records the handles it was given."""

    def __init__(self, expect: int = 1) -> None:
        self.names: list[str] = []
        self.expect = expect
        self.done = threading.Event()

    def __call__(self, handle: HeartbeatHandle) -> None:
        self.names.append(handle.name)
        if len(self.names) >= self.expect:
            self.done.set()


# --- Ceph's heartbeat_map ---------------------------------------------------------------------


def test_ceph_healthy(clock: FakeClock) -> None:
    hm = HeartbeatMap("hm", clock=clock)
    h = hm.add_worker("one")
    hm.reset_timeout(h, 9, 18)
    assert hm.is_healthy()
    hm.remove_worker(h)


def test_timeout_logged_once_per_episode(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    hm = HeartbeatMap("hm", clock=clock, suicide_action=Recorder())
    h = hm.add_worker("slow")
    hm.reset_timeout(h, 1, 0)
    clock.advance(2)
    with caplog.at_level(logging.WARNING, logger="threadpool.heartbeat"):
        for _ in range(5):  # a checker asks again and again while the worker stays late
            assert not hm.is_healthy()
        hm.reset_timeout(h, 1, 0)  # back, then late again: a second episode
        clock.advance(2)
        assert not hm.is_healthy()
    warnings = [r for r in caplog.records if "slow had timed out after 1" in r.getMessage()]
    assert len(warnings) == 2
    assert hm.get_timeouts_total() == 2
    hm.remove_worker(h)


def test_ceph_unhealthy_after_the_grace(clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    action = Recorder()
    hm = HeartbeatMap("hm", clock=clock, suicide_action=action)
    h = hm.add_worker("one")
    hm.reset_timeout(h, 1, 3)
    clock.advance(2)
    with caplog.at_level(logging.WARNING, logger="threadpool.heartbeat"):
        assert not hm.is_healthy()
    assert "one had timed out after 1" in caplog.text
    assert (hm.get_unhealthy_workers(), hm.get_total_workers()) == (1, 1)
    assert hm.get_unhealthy_worker_names() == ["one"]
    assert action.names == [], "suicide before the suicide grace"
    hm.remove_worker(h)


def test_healthy_until_the_grace_has_passed(clock: FakeClock) -> None:
    hm = HeartbeatMap("hm", clock=clock)
    h = hm.add_worker("one")
    hm.reset_timeout(h, 5)
    clock.advance(5)
    assert hm.is_healthy()
    clock.advance(0.001)
    assert not hm.is_healthy()


def test_a_stalled_pool_worker_is_unhealthy_after_its_queues_grace(
    tp: Harness, clock: FakeClock
) -> None:
    hm = tp.hb_map("osd", clock=clock)
    pool = tp.pool("osd_tp", 2, heartbeat_map=hm)
    started, release = tp.gate(), tp.gate()

    def stall(item: Any, handle: object) -> None:
        started.set()
        assert release.wait(JOIN)

    q = WorkQueueVal("ops", process=stall, timeout=1, suicide_timeout=3)
    pool.add_work_queue(q)
    pool.start()
    assert pool.wait_for_threads(timeout=JOIN)
    q.queue(1)
    wait(started, "the worker to stall")
    assert hm.is_healthy()
    clock.advance(2)
    assert not hm.is_healthy()
    assert hm.get_total_workers() == 2
    names = hm.get_unhealthy_worker_names()
    assert len(names) == 1 and names[0].startswith("osd_tp thread ")
    release.set()
    assert pool.drain(timeout=JOIN)
    pool.stop()
    assert hm.is_healthy() and hm.get_total_workers() == 0


def test_an_idle_worker_never_suicides(tp: Harness, clock: FakeClock) -> None:
    action = Recorder()
    hm = tp.hb_map("idle", clock=clock, suicide_action=action)
    pool = tp.pool("idle_tp", 1, heartbeat_map=hm, idle_grace=5, idle_wait=3600)
    q = WorkQueueVal("ops", process=lambda item, handle: None, timeout=1, suicide_timeout=2)
    pool.add_work_queue(q)
    pool.start()
    # A worker is seen running only once it has released the pool lock, which an
    # idle one does after setting its idle heartbeat.
    assert pool.wait_for_threads(timeout=JOIN)
    assert hm.stats()["workers"] == 1
    clock.advance(10_000)
    assert not hm.is_healthy()  # past the idle grace: unhealthy...
    q.queue(1)  # ...and the worker, waking, reports its own lateness
    assert pool.drain(timeout=JOIN)
    assert action.names == [], "an idle worker suicided"


# --- grace, suicide, counts -------------------------------------------------------------------


def test_reset_timeout_first_checks_the_handle(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    hm = HeartbeatMap("hm", clock=clock)
    h = hm.add_worker("late")
    hm.reset_timeout(h, 1)
    clock.advance(2)
    with caplog.at_level(logging.WARNING, logger="threadpool.heartbeat"):
        hm.reset_timeout(h, 1)
    assert "reset_timeout: late had timed out after 1" in caplog.text
    assert hm.get_timeouts_total() == 1
    assert hm.is_healthy()


def test_each_timeout_episode_counts_once(clock: FakeClock) -> None:
    hm = HeartbeatMap("hm", clock=clock)
    a, b = hm.add_worker("a"), hm.add_worker("b")
    hm.reset_timeout(a, 1)
    hm.reset_timeout(b, 100)
    clock.advance(2)
    assert not hm.is_healthy()
    assert not hm.is_healthy()
    assert hm.get_timeouts_total() == 1
    hm.reset_timeout(a, 1)  # a new episode starts
    clock.advance(2)
    assert not hm.is_healthy()
    assert hm.get_timeouts_total() == 2


def test_suicide_action_runs_once_per_episode_and_logs(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    action = Recorder()
    hm = HeartbeatMap("hm", clock=clock, suicide_action=action)
    h = hm.add_worker("stuck")
    hm.reset_timeout(h, 1, 3)
    clock.advance(4)
    with caplog.at_level(logging.WARNING, logger="threadpool.heartbeat"):
        assert not hm.is_healthy()
        assert not hm.is_healthy()
    assert action.names == ["stuck"]
    assert "stuck had suicide timed out after 3" in caplog.text
    hm.reset_timeout(h, 1, 3)  # reported again by this check: still the old episode
    assert action.names == ["stuck"]
    clock.advance(4)
    hm.is_healthy()
    assert action.names == ["stuck", "stuck"]


def test_zero_grace_and_zero_suicide_mean_no_deadline(clock: FakeClock) -> None:
    action = Recorder()
    hm = HeartbeatMap("hm", clock=clock, suicide_action=action)
    h = hm.add_worker("w")
    hm.reset_timeout(h, 0, 0)
    clock.advance(1e9)
    assert hm.is_healthy() and action.names == []


def test_clear_timeout_stops_the_deadlines(clock: FakeClock) -> None:
    hm = HeartbeatMap("hm", clock=clock)
    h = hm.add_worker("w")
    hm.reset_timeout(h, 1, 2)
    hm.clear_timeout(h)
    assert not h.active
    clock.advance(100)
    assert hm.is_healthy()


def test_tp_handle_reset_and_suspend(clock: FakeClock) -> None:
    hm = HeartbeatMap("hm", clock=clock)
    h = hm.add_worker("w")
    handle = TPHandle(hm, h, "w")
    hm.reset_timeout(h, 10, 20)
    clock.advance(8)
    handle.reset_tp_timeout()  # a long item saying "still alive"
    clock.advance(8)
    assert hm.is_healthy()
    assert (handle.grace, handle.suicide_grace) == (10, 20)
    handle.suspend_tp_timeout()  # about to block on something legitimately slow
    clock.advance(1000)
    assert hm.is_healthy()
    handle.reset_tp_timeout()  # the same grace again
    clock.advance(11)
    assert not hm.is_healthy()


def test_tp_handle_without_a_map_does_nothing() -> None:
    handle = TPHandle(None, None, "w")
    handle.reset_tp_timeout()
    handle.suspend_tp_timeout()
    assert (handle.grace, handle.suicide_grace) == (0.0, 0.0)


def test_stats_and_counts(clock: FakeClock) -> None:
    hm = HeartbeatMap("hm", clock=clock)
    a, _b = hm.add_worker("a"), hm.add_worker("b")
    hm.reset_timeout(a, 1)
    clock.advance(2)
    hm.is_healthy()
    stats = hm.stats()
    json.dumps(stats)
    assert stats == {
        "name": "hm",
        "workers": 2,
        "checked_workers": 2,
        "unhealthy_workers": 1,
        "unhealthy_names": ["a"],
        "timeouts_total": 1,
        "checks": 1,
        "checker_running": False,
    }


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda hm, h: hm.reset_timeout(h, -1), ValueError, "grace must be a finite number"),
        (lambda hm, h: hm.reset_timeout(h, "1"), TypeError, "grace must be a number"),
        (lambda hm, h: hm.reset_timeout(h, 1, float("nan")), ValueError, "suicide_grace"),
        (lambda hm, h: hm.reset_timeout("h", 1), TypeError, "expected a HeartbeatHandle"),
        (
            lambda hm, h: hm.reset_timeout(HeartbeatMap("other").add_worker("x"), 1),
            ValueError,
            "belongs to <HeartbeatMap 'other'",
        ),
        (lambda hm, h: hm.add_worker(""), TypeError, "worker name must be a non-empty str"),
        (lambda hm, h: hm.add_worker("x", thread=1), TypeError, "threading.Thread or None"),
        (lambda hm, h: hm.start_checker(0), ValueError, "interval must be a number of seconds > 0"),
        (lambda hm, h: HeartbeatMap(""), TypeError, "HeartbeatMap name must be a non-empty str"),
        (lambda hm, h: HeartbeatMap("x", suicide_action=1), TypeError, "suicide_action"),
        (lambda hm, h: HeartbeatMap("x", clock=1), TypeError, "clock must be a callable"),
    ],
)
def test_bad_arguments(call: Any, error: type, message: str) -> None:
    hm = HeartbeatMap("hm")
    h = hm.add_worker("w")
    with pytest.raises(error, match=message):
        call(hm, h)


def test_remove_worker_twice_is_an_error() -> None:
    hm = HeartbeatMap("hm")
    h = hm.add_worker("w")
    hm.remove_worker(h)
    with pytest.raises(ValueError, match="not registered"):
        hm.remove_worker(h)


# --- the checker thread -----------------------------------------------------------------------


class CountingMap(HeartbeatMap):
    """Counts the checks the checker completes."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.count = 0
        self.counted = threading.Condition()

    def check_touch_file(self, path: Any) -> bool:
        try:
            return super().check_touch_file(path)
        finally:
            with self.counted:
                self.count += 1
                self.counted.notify_all()

    def wait_checks(self, n: int) -> None:
        """Wait until n more checks complete: all but the first of them started after
        this call (the first may have been under way)."""
        with self.counted:
            target = self.count + n
            assert self.counted.wait_for(lambda: self.count >= target, JOIN), "checker stopped"


def test_checker_keeps_checking_when_every_worker_is_stuck(tp: Harness, clock: FakeClock) -> None:
    action = Recorder(expect=2)
    hm = CountingMap("stuck", clock=clock, suicide_action=action)
    tp.maps.append(hm)
    pool = tp.pool("stuck_tp", 2, heartbeat_map=hm)
    release = tp.gate()
    both = threading.Barrier(3, timeout=JOIN)

    def stuck(item: Any, handle: object) -> None:
        both.wait()
        assert release.wait(JOIN)

    q = WorkQueueVal("ops", process=stuck, timeout=1, suicide_timeout=5)
    pool.add_work_queue(q)
    pool.start()
    q.queue(1)
    q.queue(2)
    both.wait()  # every worker is stuck now
    hm.start_checker(0.005)
    clock.advance(10)
    wait(action.done, "the checker to act on both stuck workers")
    assert sorted(action.names) == ["stuck_tp thread 0", "stuck_tp thread 1"]
    hm.wait_checks(3)  # and it goes on checking
    assert hm.get_unhealthy_workers() == 2
    release.set()


def test_checker_touches_the_file_only_while_healthy(
    tmp_path: Path, tp: Harness, clock: FakeClock
) -> None:
    path = tmp_path / "heartbeat"
    hm = CountingMap("touch", clock=clock)
    tp.maps.append(hm)
    h = hm.add_worker("w")
    hm.reset_timeout(h, 1)
    hm.start_checker(0.005, touch_file=path)
    hm.wait_checks(2)
    assert path.exists(), "not touched while healthy"
    clock.advance(2)  # unhealthy from now on
    hm.wait_checks(2)
    os.utime(path, (1, 1))
    hm.wait_checks(3)
    assert path.stat().st_mtime == 1, "touched while unhealthy"
    hm.reset_timeout(h, 1)
    hm.wait_checks(2)
    assert path.stat().st_mtime > 1, "not touched again once healthy"
    hm.stop_checker(JOIN)
    assert not hm.stats()["checker_running"]


def test_checker_survives_a_raising_suicide_action(
    tp: Harness, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    def action(handle: HeartbeatHandle) -> None:
        raise RuntimeError("action broke")

    hm = CountingMap("raising", clock=clock, suicide_action=action)
    tp.maps.append(hm)
    h = hm.add_worker("w")
    hm.reset_timeout(h, 1, 2)
    clock.advance(3)
    with caplog.at_level(logging.ERROR, logger="threadpool.heartbeat"):
        hm.start_checker(0.005)
        hm.wait_checks(3)
    assert "the check failed" in caplog.text and "action broke" in caplog.text


def test_start_checker_twice_is_an_error(tp: Harness) -> None:
    hm = tp.hb_map("twice")
    hm.start_checker(10)
    with pytest.raises(RuntimeError, match="already has a checker"):
        hm.start_checker(10)


def test_touch_file_that_cannot_be_written_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    hm = HeartbeatMap("hm")
    with caplog.at_level(logging.WARNING, logger="threadpool.heartbeat"):
        assert hm.check_touch_file(tmp_path / "missing" / "dir" / "file")
    assert "cannot touch" in caplog.text


# --- the default suicide action, in a subprocess ----------------------------------------------

SUICIDE_SCRIPT = textwrap.dedent(
    """
    import logging, sys, threading
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    from threadpool import HeartbeatMap, ThreadPool, WorkQueueVal

    def stuck_in_handler(item, handle):
        threading.Event().wait()

    hb = HeartbeatMap("osd")
    pool = ThreadPool("suicide_tp", 1, heartbeat_map=hb)
    q = WorkQueueVal("ops", process=stuck_in_handler, timeout=0.1, suicide_timeout=0.3)
    pool.add_work_queue(q)
    pool.start()
    hb.start_checker(0.02)
    q.queue(1)
    threading.Event().wait(%(wait)s)
    print("still alive", flush=True)
    """
)


def run_child(tmp_path: Path, script: str) -> subprocess.CompletedProcess[str]:
    """Run script as a file (so that stacks show its lines), without a core dump."""

    def no_core() -> None:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    path = tmp_path / "child.py"
    path.write_text(script)
    return subprocess.run(
        [sys.executable, str(path)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=no_core,
    )


@pytest.mark.slow
def test_suicide_aborts_the_process_and_shows_the_stuck_threads_stack(tmp_path: Path) -> None:
    child = run_child(tmp_path, SUICIDE_SCRIPT % {"wait": 30})
    assert child.returncode == -signal.SIGABRT, child.stdout + child.stderr
    assert "still alive" not in child.stdout
    err = child.stderr
    assert "suicide_tp thread 0 had timed out after 0.1" in err
    assert "suicide_tp thread 0 had suicide timed out after 0.3" in err
    assert "Python stack of the stuck thread 'suicide_tp thread 0'" in err
    stack = err[err.index("Python stack of the stuck thread") :]
    assert "in stuck_in_handler" in stack
    assert "threading.Event().wait()" in stack


@pytest.mark.slow
def test_suicide_of_a_worker_that_comes_back_late_is_reported_by_itself(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import sys, threading
        from threadpool import HeartbeatMap, ThreadPool, WorkQueueVal

        now = [1000.0]
        hb = HeartbeatMap("osd", clock=lambda: now[0])
        pool = ThreadPool("late_tp", 1, heartbeat_map=hb)
        def slow_then_back(item, handle):
            now[0] += 10  # the clock runs past the suicide grace while in process
        q = WorkQueueVal("ops", process=slow_then_back, timeout=1, suicide_timeout=3)
        pool.add_work_queue(q)
        pool.start()
        q.queue(1)
        pool.drain(timeout=30)
        pool.stop()
        print("still alive", flush=True)
        """
    )
    child = run_child(tmp_path, script)
    assert child.returncode == -signal.SIGABRT, child.stdout + child.stderr
    assert "late_tp thread 0 had suicide timed out after 3" in child.stderr
    assert "Python stack of the stuck thread 'late_tp thread 0'" in child.stderr


# --- the heartbeat file: never through a symlink ---------------------------------------------


def test_touch_file_is_created_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "heartbeat"
    old = os.umask(0)  # the mode asked for, not one the umask narrowed
    try:
        assert HeartbeatMap("hm").check_touch_file(path)
    finally:
        os.umask(old)
    assert path.is_file()
    assert path.stat().st_mode & 0o777 == 0o600


def test_touch_file_does_not_follow_a_symlink(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    target = tmp_path / "target"
    target.write_text("keep me")
    os.utime(target, (1, 1))
    link = tmp_path / "heartbeat"
    link.symlink_to(target)
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "created-through-the-link")
    hm = HeartbeatMap("hm")
    with caplog.at_level(logging.WARNING, logger="threadpool.heartbeat"):
        assert hm.check_touch_file(link), "the check's answer stands"
        assert hm.check_touch_file(dangling)
    assert target.read_text() == "keep me"
    assert target.stat().st_mtime == 1, "the symlink's target was touched"
    assert link.is_symlink() and dangling.is_symlink()
    assert not (tmp_path / "created-through-the-link").exists()
    assert caplog.text.count("it is a symbolic link") == 2


def test_touch_file_refuses_what_is_not_a_regular_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    hm = HeartbeatMap("hm")
    with caplog.at_level(logging.WARNING, logger="threadpool.heartbeat"):
        # nobody reads it: an open that blocked would hang the checker; it fails instead
        assert hm.check_touch_file(fifo)
        assert "cannot touch" in caplog.text
        caplog.clear()
        reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # now the open succeeds
        try:
            assert hm.check_touch_file(fifo)
        finally:
            os.close(reader)
    assert "not a regular file" in caplog.text


def test_touch_failure_is_logged_once_until_a_touch_succeeds(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "heartbeat"
    path.symlink_to(tmp_path / "elsewhere")
    hm = HeartbeatMap("hm")
    with caplog.at_level(logging.WARNING, logger="threadpool.heartbeat"):
        for _ in range(3):
            hm.check_touch_file(path)
        assert caplog.text.count("cannot touch") == 1
        path.unlink()
        hm.check_touch_file(path)  # succeeds: the next failure is news again
        assert path.is_file()
        path.unlink()
        path.symlink_to(tmp_path / "elsewhere")
        hm.check_touch_file(path)
    assert caplog.text.count("cannot touch") == 2


# --- a worker's reset: reset_with(limits_of(...)) is reset_at ---------------------------------

seconds = st.sampled_from([0.0, 0.5, 1.0, 2.0, 60.0])


@given(seconds, seconds, st.floats(min_value=0, max_value=1e6))
def test_reset_with_limits_is_reset_at(grace: float, suicide: float, now: float) -> None:
    hm = HeartbeatMap("hm")
    by_args = hm.add_worker("a")
    by_limits = hm.add_worker("b")
    by_args.reset_at(now, grace, suicide)
    by_limits.reset_with(now, limits_of(grace, suicide))
    assert by_limits._state == by_args._state == (now, grace, suicide)
    assert by_limits._due == by_args._due
    for late in (now + grace, now + suicide, now + max(grace, suicide) + 1):
        assert by_limits.is_late(late) == by_args.is_late(late)
