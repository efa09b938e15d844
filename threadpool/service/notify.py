"""systemd's notification protocol (``sd_notify``), without libsystemd.

When systemd starts a ``Type=notify`` unit it sets ``NOTIFY_SOCKET`` (a path,
or ``@name`` for the abstract namespace) and, with ``WatchdogSec=``,
``WATCHDOG_USEC`` (and ``WATCHDOG_PID``). The service sends newline-separated
``KEY=value`` datagrams there: ``READY=1`` once it serves, ``STOPPING=1`` when
it starts to shut down, ``STATUS=...`` for ``systemctl status``, and
``WATCHDOG=1`` at least every ``WATCHDOG_USEC``. Without ``NOTIFY_SOCKET``
everything here does nothing.

``Watchdog`` pings at half the watchdog period, and only while ``healthy()``
says so: a service whose workers are stuck stops pinging, and systemd
restarts it when the period runs out.

A notification that cannot be sent is logged once and otherwise ignored: the
service must not fail because its supervisor went away.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Mapping

logger = logging.getLogger("threadpool.service")


class Notifier:
    """Sends notifications to ``address`` (None: to nobody)."""

    def __init__(self, address: str | None) -> None:
        if address and address.startswith("@"):
            address = "\0" + address[1:]
        self.address = address or None
        self._warned = False

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] = os.environ) -> Notifier:
        return cls(environ.get("NOTIFY_SOCKET"))

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *fields: str) -> bool:
        """Send ``KEY=value`` fields in one datagram; whether it was sent."""
        if self.address is None:
            return False
        message = "\n".join(fields).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto(message, self.address)
        except OSError as exc:
            if not self._warned:
                self._warned = True
                logger.warning("cannot notify the service manager at %r: %s", self.address, exc)
            return False
        return True

    def ready(self, status: str) -> bool:
        return self.send("READY=1", f"STATUS={status}")

    def stopping(self, status: str) -> bool:
        return self.send("STOPPING=1", f"STATUS={status}")

    def status(self, status: str) -> bool:
        return self.send(f"STATUS={status}")


def watchdog_interval(environ: Mapping[str, str] = os.environ) -> float | None:
    """Seconds between pings (half of ``WATCHDOG_USEC``), or None when no watchdog
    is asked of this process (unset, not a positive number, or another PID's)."""
    usec = environ.get("WATCHDOG_USEC", "")
    pid = environ.get("WATCHDOG_PID", "")
    if pid and pid != str(os.getpid()):
        return None
    try:
        value = int(usec)
    except ValueError:
        return None
    return value / 2e6 if value > 0 else None


class Watchdog:
    """A thread sending ``WATCHDOG=1`` every ``interval`` seconds while ``healthy()``."""

    def __init__(self, notifier: Notifier, interval: float, healthy: Callable[[], bool]) -> None:
        self._notifier = notifier
        self._interval = interval
        self._healthy = healthy
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="watchdog", daemon=True)
        self.pings = 0
        self.skipped = 0

    def start(self) -> None:
        self._thread.start()
        logger.info("systemd watchdog: pinging every %gs while healthy", self._interval)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread.ident is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        was_healthy = True
        while True:
            try:
                healthy = self._healthy()
            except Exception:
                logger.exception("systemd watchdog: the health check failed")
                healthy = False
            if healthy:
                self._notifier.send("WATCHDOG=1")
                self.pings += 1
            else:
                self.skipped += 1
                if was_healthy:
                    logger.error("systemd watchdog: unhealthy, not pinging until healthy again")
            was_healthy = healthy
            if self._stop.wait(self._interval):
                return
