"""Heartbeats: per-worker deadlines, health checks, and the suicide action (Ceph's HeartbeatMap).

A worker registers with ``add_worker(name)`` and gets a handle. Before each
item it calls ``reset_timeout(handle, grace, suicide_grace)``: the worker is
expected back within ``grace`` seconds, and must never take ``suicide_grace``
(0 = no such limit). ``is_healthy()`` checks every handle against the clock
(monotonic by default):

* past ``grace``: the worker is unhealthy, and ``"<worker> had timed out after
  <grace>"`` is logged (WARNING, logger ``threadpool.heartbeat``, once per
  episode; DEBUG at later checks of the same episode); each such episode
  counts once in ``get_timeouts_total()``;
* past ``suicide_grace``: ``"<worker> had suicide timed out after
  <suicide_grace>"`` is logged (CRITICAL) and the suicide action runs, once per
  episode. The default action writes that line and the *stuck thread's*
  Python stack to stderr, then calls ``os.abort()`` so that a supervisor
  restarts the process. Pass ``suicide_action=callable(handle)`` to embed the
  map elsewhere or to test it.

``reset_timeout`` checks the handle before moving its deadlines, so a worker
that comes back late from an item reports its own timeout (as in Ceph).

Something has to call ``is_healthy()`` even when every worker is stuck:
``start_checker(interval, touch_file)`` runs a thread that does, and touches
``touch_file`` while the map is healthy (for a supervisor that watches its
mtime), never through a symlink (see ``touch_file``).

Thread safety: every method may be called from any thread. A handle's
deadlines have one writer, ``HeartbeatHandle.reset_at`` / ``clear_at``
(which ``reset_timeout``, ``clear_timeout`` and ``TPHandle`` call, and a
ThreadPool's workers call directly): it stores one tuple and takes no lock,
so a worker pays almost nothing for its heartbeat, and it reports lateness
first only when the handle is past its earliest deadline. Only the worker a
handle belongs to resets or clears it; the checker only reads. The map's own
lock (a ``lockdep.Mutex`` named ``HeartbeatMap::<name>``) guards
registration and the check's bookkeeping.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import sys
import threading
import traceback
from collections.abc import Callable
from time import monotonic
from typing import Any

import lockdep

logger = logging.getLogger("threadpool.heartbeat")

# A handle's state: (since, grace, suicide_grace). ``since`` is the clock
# reading of the last reset, or None while the timeout is cleared (the limits
# are kept so that TPHandle.reset_tp_timeout can restore them).
State = tuple[float | None, float, float]
_CLEARED: State = (None, 0.0, 0.0)
INF = float("inf")

# A unit's limits as a pool's worker resets its handle with them (``reset_with``):
# (grace, suicide_grace, the earlier of the two that is set, or 0 if neither is).
Limits = tuple[float, float, float]


def limits_of(grace: float, suicide_grace: float) -> Limits:
    """``Limits`` for ``grace`` and ``suicide_grace`` (seconds, 0: none)."""
    return (grace, suicide_grace, _earliest(grace, suicide_grace))


def _earliest(grace: float, suicide_grace: float) -> float:
    """The earlier of the two limits that is set (not 0); 0 if neither is."""
    if grace and (not suicide_grace or grace < suicide_grace):
        return grace
    return suicide_grace


def _secs(value: float) -> str:
    return f"{value:g}"


def check_seconds(what: str, value: object) -> float:
    """A number of seconds >= 0, as a float; TypeError/ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} must be a number of seconds >= 0, got {value!r}")
    if not value >= 0 or value == float("inf"):
        raise ValueError(f"{what} must be a finite number of seconds >= 0, got {value!r}")
    return float(value)


# The heartbeat file's open: never through a symlink (ELOOP), a FIFO does not block.
TOUCH_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
TOUCH_MODE = 0o600


def touch_file(path: str | os.PathLike[str]) -> None:
    """Create the regular file at ``path`` (mode 0600) or update its times.

    A supervisor that cannot speak HTTP watches this file's mtime; the process
    touching it often runs as root, and the file often lives in a directory
    others can write (``/tmp``, a shared volume). So a symlink at ``path`` is
    never followed (``O_NOFOLLOW``: OSError ELOOP, dangling or not, and its target
    is left alone), anything but a regular file is refused (OSError EINVAL;
    ``O_NONBLOCK`` keeps a FIFO from blocking the checker), and a new file is
    readable by its owner only.
    """
    fd = os.open(path, TOUCH_FLAGS, TOUCH_MODE)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", os.fspath(path))
        os.utime(fd)
    finally:
        os.close(fd)


class HeartbeatHandle:
    """One worker's entry in a ``HeartbeatMap`` (Ceph's ``heartbeat_handle_d``).

    ``name`` is the worker's name in log lines and reports; ``thread_ident``
    the thread whose stack the default suicide action dumps.
    """

    __slots__ = ("_counted", "_due", "_map", "_state", "_suicided", "name", "thread_ident")

    def __init__(self, hb_map: HeartbeatMap, name: str, thread_ident: int | None) -> None:
        self._map = hb_map
        self.name = name
        self.thread_ident = thread_ident
        self._state: State = _CLEARED
        self._due = INF  # the earliest deadline of _state: past it, a reset reports first
        self._counted: float | None = None  # `since` of the grace timeout already counted
        self._suicided: float | None = None  # `since` of the suicide already acted on

    def reset_at(
        self, now: float, grace: float, suicide_grace: float, who: str = "reset_timeout"
    ) -> None:
        """Report this handle if it is late at ``now``, then expect it back within
        ``grace`` and never past ``suicide_grace`` seconds from ``now`` (0: none).

        No validation: ``HeartbeatMap.reset_timeout`` is the checked entry point; a
        pool's workers, which pass their queues' already-checked limits and their map's
        clock reading, call this (or ``reset_with``) directly. Only the worker the handle
        belongs to may call it.
        """
        self.reset_with(now, limits_of(grace, suicide_grace), who)

    def reset_with(self, now: float, limits: Limits, who: str = "reset_timeout") -> None:
        """``reset_at(now, grace, suicide_grace)`` with ``limits_of(grace,
        suicide_grace)``: what a pool's worker calls before each unit, with its queue's
        limits worked out once rather than at every unit. The one writer of the
        deadlines (see ``reset_at``)."""
        if now > self._due:
            self._map._check(self, now, who)
        grace, suicide, first = limits
        self._state = (now, grace, suicide)
        self._due = now + first if first else INF

    def clear_at(self, now: float, who: str = "clear_timeout") -> None:
        """Report this handle if it is late at ``now``, then stop its deadlines (the
        limits are kept for ``TPHandle.reset_tp_timeout``). See ``reset_at``."""
        if now > self._due:
            self._map._check(self, now, who)
        _since, grace, suicide = self._state
        self._state = (None, grace, suicide)
        self._due = INF

    def is_late(self, now: float) -> bool:
        """Whether ``now`` is past the earliest deadline (a reset would report first)."""
        return now > self._due

    @property
    def grace(self) -> float:
        return self._state[1]

    @property
    def suicide_grace(self) -> float:
        return self._state[2]

    @property
    def active(self) -> bool:
        """Whether a deadline is running (reset and not cleared since)."""
        return self._state[0] is not None

    def __repr__(self) -> str:
        since, grace, suicide = self._state
        state = "cleared" if since is None else f"grace {_secs(grace)}, suicide {_secs(suicide)}"
        return f"<HeartbeatHandle {self.name!r} {state}>"


SuicideAction = Callable[[HeartbeatHandle], object]


def abort_on_suicide(handle: HeartbeatHandle) -> None:
    """The default suicide action: report the stuck thread's stack on stderr, then abort."""
    lines = [
        f"threadpool: {handle.name} had suicide timed out after {_secs(handle.suicide_grace)}\n"
    ]
    frame = sys._current_frames().get(handle.thread_ident or -1)
    if frame is None:
        lines.append(f"threadpool: the stuck thread of {handle.name!r} is gone; no stack\n")
    else:
        lines.append(
            f"threadpool: Python stack of the stuck thread {handle.name!r} "
            f"(thread ident {handle.thread_ident}), most recent call last:\n"
        )
        lines.extend(traceback.format_stack(frame))
    lines.append("threadpool: aborting so that the supervisor restarts the process\n")
    try:
        sys.stderr.write("".join(lines))
        sys.stderr.flush()
    finally:
        os.abort()


class HeartbeatMap:
    """Deadlines of a set of workers; see the module docstring for the contract.

    ``HeartbeatMap(name, suicide_action=None, clock=time.monotonic)``.
    ``clock`` is injectable for tests; a ``ThreadPool`` using this map takes
    its readings from the same clock.
    """

    def __init__(
        self,
        name: str,
        *,
        suicide_action: SuicideAction | None = None,
        clock: Callable[[], float] = monotonic,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError(f"HeartbeatMap name must be a non-empty str, got {name!r}")
        if suicide_action is not None and not callable(suicide_action):
            raise TypeError(
                f"suicide_action must be a callable taking a HeartbeatHandle, "
                f"got {suicide_action!r}"
            )
        if not callable(clock):
            raise TypeError(f"clock must be a callable returning seconds, got {clock!r}")
        self.name = name
        self.clock = clock
        self.suicide_action: SuicideAction = suicide_action or abort_on_suicide
        self._lock = lockdep.Mutex(f"HeartbeatMap::{name}")
        self._workers: list[HeartbeatHandle] = []
        self._unhealthy = 0
        self._total = 0
        self._unhealthy_names: list[str] = []
        self._timeouts_total = 0
        self._checks = 0
        self._checker: threading.Thread | None = None
        self._checker_stop = threading.Event()
        self._touch_failure: str | None = None  # the last failure logged, until a touch works

    def __repr__(self) -> str:
        return f"<HeartbeatMap {self.name!r}, {len(self._workers)} workers>"

    # --- workers ------------------------------------------------------------------

    def add_worker(self, name: str, thread: threading.Thread | None = None) -> HeartbeatHandle:
        """Register a worker (default thread: the caller) and return its handle, cleared."""
        if not isinstance(name, str) or not name:
            raise TypeError(f"worker name must be a non-empty str, got {name!r}")
        if thread is not None and not isinstance(thread, threading.Thread):
            raise TypeError(f"thread must be a threading.Thread or None, got {thread!r}")
        ident = thread.ident if thread is not None else threading.get_ident()
        handle = HeartbeatHandle(self, name, ident)
        with self._lock:
            self._workers.append(handle)
        return handle

    def remove_worker(self, handle: HeartbeatHandle) -> None:
        """Unregister a worker. ValueError if the handle is not registered here."""
        self._own(handle)
        with self._lock:
            try:
                self._workers.remove(handle)
            except ValueError:
                raise ValueError(f"{handle!r} is not registered in {self!r}") from None

    def reset_timeout(
        self, handle: HeartbeatHandle, grace: float, suicide_grace: float = 0.0
    ) -> None:
        """Check the handle, then expect it back within grace (and never past suicide_grace).

        ``grace`` 0 means no grace deadline; ``suicide_grace`` 0 means no suicide.
        """
        self._own(handle)
        grace = check_seconds("grace", grace)
        suicide_grace = check_seconds("suicide_grace", suicide_grace)
        handle.reset_at(self.clock(), grace, suicide_grace)

    def clear_timeout(self, handle: HeartbeatHandle) -> None:
        """Check the handle, then stop its deadlines (until the next reset)."""
        self._own(handle)
        handle.clear_at(self.clock())

    def _own(self, handle: object) -> None:
        if not isinstance(handle, HeartbeatHandle):
            raise TypeError(f"expected a HeartbeatHandle from add_worker(), got {handle!r}")
        if handle._map is not self:
            raise ValueError(f"{handle!r} belongs to {handle._map!r}, not {self!r}")

    # --- checks -------------------------------------------------------------------

    def is_healthy(self) -> bool:
        """Check every worker; False if any is past its grace. Runs the suicide action
        for a worker past its suicide grace. Updates the counts the getters return."""
        with self._lock:
            workers = list(self._workers)
        now = self.clock()
        unhealthy = [h.name for h in workers if not self._check(h, now, "is_healthy")]
        with self._lock:
            self._unhealthy = len(unhealthy)
            self._total = len(workers)
            self._unhealthy_names = unhealthy
            self._checks += 1
        return not unhealthy

    def _check(self, handle: HeartbeatHandle, now: float, who: str) -> bool:
        since, grace, suicide = handle._state
        if since is None:
            return True
        late = now - since
        healthy = True
        if grace and late > grace:
            healthy = False
            with self._lock:
                first = handle._counted != since
                if first:
                    handle._counted = since
                    self._timeouts_total += 1
            # WARNING once per episode (as it is counted), DEBUG at later checks: a
            # checker running ten times a second must not flood the log.
            logger.log(
                logging.WARNING if first else logging.DEBUG,
                "%s: %s had timed out after %s",
                who,
                handle.name,
                _secs(grace),
            )
        if suicide and late > suicide:
            with self._lock:
                first = handle._suicided != since
                handle._suicided = since
            if first:
                logger.critical(
                    "%s: %s had suicide timed out after %s", who, handle.name, _secs(suicide)
                )
                self.suicide_action(handle)
        return healthy

    def get_unhealthy_workers(self) -> int:
        """How many workers the last is_healthy() found past their grace."""
        return self._unhealthy

    def get_total_workers(self) -> int:
        """How many workers the last is_healthy() checked."""
        return self._total

    def get_unhealthy_worker_names(self) -> list[str]:
        """The names of the workers the last is_healthy() found past their grace."""
        with self._lock:
            return list(self._unhealthy_names)

    def get_timeouts_total(self) -> int:
        """Grace timeouts seen so far, each episode (one reset, one lateness) counted once."""
        return self._timeouts_total

    def check_touch_file(self, path: str | os.PathLike[str] | None) -> bool:
        """is_healthy(); if healthy and ``path`` is given, touch the file (``touch_file``).

        A file that cannot be touched (a symlink, not a regular file, no such
        directory, ...) is logged, not raised: the check's answer stands. The same
        failure is logged once (WARNING) until a touch succeeds again, not at every check.
        """
        healthy = self.is_healthy()
        if healthy and path is not None:
            try:
                touch_file(path)
            except OSError as exc:
                why = "it is a symbolic link" if exc.errno == errno.ELOOP else exc.strerror
                failure = f"{os.fspath(path)}: {why}"
                if failure != self._touch_failure:
                    self._touch_failure = failure
                    logger.warning("heartbeat map %s: cannot touch %s", self.name, failure)
            else:
                self._touch_failure = None
        return healthy

    # --- the checker thread ---------------------------------------------------------

    def start_checker(
        self, interval: float = 1.0, touch_file: str | os.PathLike[str] | None = None
    ) -> None:
        """Start a thread that calls check_touch_file(touch_file) every ``interval`` seconds.

        It keeps checking whatever the workers do; an error in a check (a
        suicide action that raises, say) is logged and the checking goes on.
        RuntimeError if a checker is already running.
        """
        interval = check_seconds("interval", interval)
        if interval == 0:
            raise ValueError("interval must be a number of seconds > 0, got 0")
        with self._lock:
            if self._checker is not None:
                raise RuntimeError(f"{self!r} already has a checker thread")
            self._checker_stop.clear()
            thread = threading.Thread(
                target=self._check_loop,
                args=(interval, touch_file),
                name=f"{self.name} heartbeat checker",
                daemon=True,
            )
            self._checker = thread
        thread.start()

    def stop_checker(self, timeout: float | None = None) -> None:
        """Stop the checker thread and join it (a no-op if none runs)."""
        with self._lock:
            thread, self._checker = self._checker, None
        if thread is None:
            return
        self._checker_stop.set()
        thread.join(timeout)
        if thread.is_alive():
            raise TimeoutError(f"the checker of {self!r} did not stop within {timeout}s")

    def _check_loop(self, interval: float, touch_file: str | os.PathLike[str] | None) -> None:
        stop = self._checker_stop
        while True:
            try:
                self.check_touch_file(touch_file)
            except Exception:
                logger.exception("heartbeat map %s: the check failed", self.name)
            if stop.wait(interval):
                return

    # --- reading -------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """JSON-serialisable counters (all from the last check except ``workers``):
        ``name``, ``workers`` (registered now), ``checked_workers``,
        ``unhealthy_workers``, ``unhealthy_names``, ``timeouts_total``, ``checks``,
        ``checker_running``."""
        with self._lock:
            return {
                "name": self.name,
                "workers": len(self._workers),
                "checked_workers": self._total,
                "unhealthy_workers": self._unhealthy,
                "unhealthy_names": list(self._unhealthy_names),
                "timeouts_total": self._timeouts_total,
                "checks": self._checks,
                "checker_running": self._checker is not None,
            }


class TPHandle:
    """What a process step is given (Ceph's ``ThreadPool::TPHandle``).

    ``reset_tp_timeout()``: "still alive" — restart the current item's grace
    and suicide deadlines; long items call it in their loops.
    ``suspend_tp_timeout()``: stop the deadlines before blocking on something
    legitimately slow; the next reset starts them again. Both do nothing in a
    pool without a heartbeat map. ``worker`` is the worker's name.
    """

    __slots__ = ("_hb", "_map", "worker")

    def __init__(
        self, hb_map: HeartbeatMap | None, hb: HeartbeatHandle | None, worker: str
    ) -> None:
        self._map = hb_map
        self._hb = hb
        self.worker = worker

    @property
    def grace(self) -> float:
        """The grace of the unit in hand (0 without a heartbeat map)."""
        return self._hb._state[1] if self._hb is not None else 0.0

    @property
    def suicide_grace(self) -> float:
        """The suicide grace of the unit in hand (0 without a heartbeat map)."""
        return self._hb._state[2] if self._hb is not None else 0.0

    def reset_tp_timeout(self) -> None:
        hb = self._hb
        if hb is not None and self._map is not None:
            _since, grace, suicide = hb._state
            hb.reset_at(self._map.clock(), grace, suicide, "reset_tp_timeout")

    def suspend_tp_timeout(self) -> None:
        hb = self._hb
        if hb is not None and self._map is not None:
            hb.clear_at(self._map.clock(), "suspend_tp_timeout")

    def __repr__(self) -> str:
        return f"<TPHandle of {self.worker!r}>"
