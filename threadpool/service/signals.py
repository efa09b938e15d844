"""Signals as events the main loop reads: SIGTERM, SIGINT and SIGHUP through a pipe.

The handlers do nothing in Python: the interpreter's C-level handler writes
each signal's number to a pipe (``signal.set_wakeup_fd``), and the main loop
reads them with ``SignalPipe.wait(timeout)``. So no lock is taken in a signal
handler (which could deadlock against the interrupted main thread), a signal
arriving while the loop is busy (applying a reload, say) is kept for the next
``wait``, and none is lost between two waits.

Use as a context manager around the service's life, from the main thread;
on exit the previous handlers and wakeup descriptor are restored.
"""

from __future__ import annotations

import os
import select
import signal
import threading
from types import FrameType, TracebackType

HANDLED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def _note(signum: int, frame: FrameType | None) -> None:
    """The Python-level handler: the wakeup pipe already has the signal's number."""


class SignalPipe:
    """Catches SIGTERM, SIGINT and SIGHUP while in a ``with`` block (main thread only)."""

    def __init__(self) -> None:
        self._read = self._write = -1
        self._old_fd = -1
        self._old: dict[int, object] = {}
        # Guards the write end against wake() after close (its number may be reused).
        # Never taken in a signal handler: the signals reach the pipe from C.
        self._closing = threading.Lock()

    def __enter__(self) -> SignalPipe:
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)
        self._old_fd = signal.set_wakeup_fd(self._write, warn_on_full_buffer=False)
        for signum in HANDLED:
            self._old[signum] = signal.signal(signum, _note)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for signum, handler in self._old.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
        signal.set_wakeup_fd(self._old_fd)
        with self._closing:
            os.close(self._read)
            os.close(self._write)
            self._read = self._write = -1

    def wake(self) -> None:
        """Make a ``wait`` in progress return now (from any thread; a no-op once closed)."""
        with self._closing:
            if self._write >= 0:
                try:
                    os.write(self._write, b"\0")  # 0 is no signal: wait() drops it
                except BlockingIOError:
                    pass  # the pipe is full: wait() will return anyway

    def wait(self, timeout: float) -> list[signal.Signals]:
        """The signals received since the last call, in order; waits up to ``timeout``
        seconds for one (or a ``wake``) when there are none."""
        readable, _, _ = select.select([self._read], [], [], max(timeout, 0.0))
        if not readable:
            return []
        try:
            data = os.read(self._read, 256)
        except BlockingIOError:
            return []
        return [signal.Signals(n) for n in data if n in HANDLED]
