"""``CallFuture``: a ``concurrent.futures.Future`` that costs little when nobody waits.

CPython's ``Future`` makes a ``threading.Condition`` (a Python object around
an ``RLock``, with a deque and five bound methods), a list of waiters and a
list of callbacks for every future, and takes the condition in Python code at
each step: about 2 microseconds and a dozen objects for the garbage collector
per call, which is most of what an executor of short calls spends. A
``CallFuture`` is the same future with the same states, the same errors and
the same attributes, built on demand:

* its lock is a plain ``RLock`` (what the ``Condition`` wraps), taken in C;
* the condition, the list of waiters and the list of callbacks are made the
  first time something needs them (a ``result()`` that must wait,
  ``concurrent.futures.wait``/``as_completed``, ``add_done_callback``); a
  future nobody waits for never makes them, and a result sets no condition
  nobody waits on.

Thread safety is the base class's: every change of state, and every look at
the lazily made parts, is made with the future's lock held (never a GIL
assumption). ``_condition``, ``_waiters`` and ``_done_callbacks`` remain what
CPython's ``wait``, ``as_completed`` and the base class's methods use (the
condition is made on that same lock), so it passes for a ``Future`` wherever
one is expected: ``isinstance``, ``asyncio.wrap_future``, CPython's own
executor tests.
"""

from __future__ import annotations

import threading
from concurrent.futures import CancelledError, Future, InvalidStateError
from concurrent.futures import TimeoutError as FuturesTimeoutError
from concurrent.futures._base import (
    _STATE_TO_DESCRIPTION_MAP,
    CANCELLED,
    CANCELLED_AND_NOTIFIED,
    FINISHED,
    LOGGER,
    PENDING,
    RUNNING,
)
from typing import Any, TypeVar

T = TypeVar("T")

_CANCELLED = (CANCELLED, CANCELLED_AND_NOTIFIED)
_DONE = (CANCELLED, CANCELLED_AND_NOTIFIED, FINISHED)


class CallFuture(Future[T]):
    """A ``concurrent.futures.Future``; see the module docstring."""

    _lock: threading.RLock
    _cond: threading.Condition | None
    _wait_list: list[Any] | None
    _callbacks: list[Any] | None

    def __init__(self) -> None:  # not Future.__init__: it makes what this makes on demand
        self._lock = threading.RLock()
        self._state = PENDING
        self._result: Any = None
        self._exception: BaseException | None = None
        self._cond = None
        self._wait_list = None
        self._callbacks = None

    # --- made on demand (what CPython's wait() and as_completed() use) -----------------

    @property
    def _condition(self) -> threading.Condition:  # type: ignore[override]
        with self._lock:
            cond = self._cond
            if cond is None:
                cond = self._cond = threading.Condition(self._lock)
            return cond

    @property
    def _waiters(self) -> list[Any]:  # type: ignore[override]
        with self._lock:
            waiters = self._wait_list
            if waiters is None:
                waiters = self._wait_list = []
            return waiters

    @property
    def _done_callbacks(self) -> list[Any]:
        with self._lock:
            callbacks = self._callbacks
            if callbacks is None:
                callbacks = self._callbacks = []
            return callbacks

    def _invoke_callbacks(self) -> None:
        for callback in self._callbacks or ():
            try:
                callback(self)
            except Exception:
                LOGGER.exception("exception calling callback for %r", self)

    def _outcome(self) -> T:
        """The result, or raise the exception (lock held, state FINISHED)."""
        if self._exception:  # as Future does
            try:
                raise self._exception
            finally:
                self = None  # type: ignore[assignment]  # the traceback refers to this frame
        return self._result  # type: ignore[no-any-return]

    def _wait_finished(self, timeout: float | None) -> None:
        """Return once FINISHED, waiting up to ``timeout``; CancelledError if cancelled,
        TimeoutError if still not done (lock held; for result() and exception())."""
        if self._state == FINISHED:
            return
        if self._state not in _CANCELLED:
            cond = self._cond
            if cond is None:
                cond = self._cond = threading.Condition(self._lock)
            cond.wait(timeout)
            if self._state == FINISHED:
                return
        if self._state in _CANCELLED:
            raise CancelledError()
        raise FuturesTimeoutError()

    # --- the Future API --------------------------------------------------------------

    def __repr__(self) -> str:
        with self._lock:
            state = self._state
            what = _STATE_TO_DESCRIPTION_MAP[state]
            if state == FINISHED:
                if self._exception:
                    what += f" raised {self._exception.__class__.__name__}"
                else:
                    what += f" returned {self._result.__class__.__name__}"
        name = "Future" if type(self) is CallFuture else type(self).__name__  # as users see it
        return f"<{name} at {id(self):#x} state={what}>"

    def cancel(self) -> bool:
        with self._lock:
            state = self._state
            if state in (RUNNING, FINISHED):
                return False
            if state in _CANCELLED:
                return True
            self._state = CANCELLED
            if self._cond is not None:
                self._cond.notify_all()
        self._invoke_callbacks()
        return True

    def cancelled(self) -> bool:
        with self._lock:
            return self._state in _CANCELLED

    def running(self) -> bool:
        with self._lock:
            return self._state == RUNNING

    def done(self) -> bool:
        with self._lock:
            return self._state in _DONE

    def add_done_callback(self, fn: Any) -> None:
        with self._lock:
            if self._state not in _DONE:
                if self._callbacks is None:
                    self._callbacks = [fn]
                else:
                    self._callbacks.append(fn)
                return
        try:
            fn(self)
        except Exception:
            LOGGER.exception("exception calling callback for %r", self)

    def result(self, timeout: float | None = None) -> T:
        try:
            with self._lock:
                if self._state != FINISHED:  # done already: the usual case
                    self._wait_finished(timeout)
                return self._outcome()
        finally:
            self = None  # type: ignore[assignment]  # break a cycle with _exception

    def exception(self, timeout: float | None = None) -> BaseException | None:
        with self._lock:
            self._wait_finished(timeout)
            return self._exception

    def set_running_or_notify_cancel(self) -> bool:
        with self._lock:
            state = self._state
            if state == PENDING:
                self._state = RUNNING
                return True
            if state == CANCELLED:
                self._state = CANCELLED_AND_NOTIFIED
                for waiter in self._wait_list or ():
                    waiter.add_cancelled(self)
                return False  # cancel() notified the condition already
            LOGGER.critical("Future %s in unexpected state: %s", id(self), state)
            raise RuntimeError("Future in unexpected state")

    def set_result(self, result: T) -> None:
        with self._lock:
            if self._state in _DONE:
                raise InvalidStateError(f"{self._state}: {self!r}")
            self._result = result
            self._state = FINISHED
            if self._wait_list:
                for waiter in self._wait_list:
                    waiter.add_result(self)
            if self._cond is not None:
                self._cond.notify_all()
        if self._callbacks:
            self._invoke_callbacks()

    def set_exception(self, exception: BaseException | None) -> None:
        with self._lock:
            if self._state in _DONE:
                raise InvalidStateError(f"{self._state}: {self!r}")
            self._exception = exception
            self._state = FINISHED
            if self._wait_list:
                for waiter in self._wait_list:
                    waiter.add_exception(self)
            if self._cond is not None:
                self._cond.notify_all()
        if self._callbacks:
            self._invoke_callbacks()
