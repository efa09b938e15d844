"""The heartbeat file, touched without following symlinks.

A supervisor that cannot speak HTTP watches a file's modification time; the
service touches ``heartbeat.file`` after every healthy check. The service
often runs as root, and the file often lives in a directory others can write
(``/tmp``, a shared volume): following a symlink planted there would let
anyone create or touch any file as root. So the file is opened with
``O_NOFOLLOW`` (a symlink is refused, dangling or not), must be a regular
file (a FIFO or device is refused, and ``O_NONBLOCK`` keeps a FIFO from
blocking the checker), and is created mode 0600.

``HeartbeatFileMap`` is the service's ``HeartbeatMap``: the same checks, with
this touch, and a touch failure logged once until it succeeds again rather
than at every check. (``HeartbeatMap.check_touch_file`` in the pool core
follows symlinks; this override goes once the core refuses them too.)
"""

from __future__ import annotations

import errno
import logging
import os
import stat

from threadpool import HeartbeatMap

logger = logging.getLogger("threadpool.service")

FLAGS = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
MODE = 0o600


def touch(path: str | os.PathLike[str]) -> None:
    """Create the regular file at ``path`` or update its times; OSError for a symlink
    (ELOOP), anything but a regular file, or whatever else prevents it."""
    fd = os.open(path, FLAGS, MODE)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        os.utime(fd)
    finally:
        os.close(fd)


class HeartbeatFileMap(HeartbeatMap):
    """A ``HeartbeatMap`` whose checker touches its file with ``touch``."""

    _touch_error: str | None = None  # the last failure logged, until a touch succeeds

    def check_touch_file(self, path: str | os.PathLike[str] | None) -> bool:
        healthy = self.is_healthy()
        if healthy and path is not None:
            try:
                touch(path)
            except OSError as exc:
                why = "it is a symbolic link" if exc.errno == errno.ELOOP else exc.strerror
                message = f"heartbeat file {os.fspath(path)!r} not touched: {why}"
                if message != self._touch_error:
                    self._touch_error = message
                    logger.error("%s", message)
            else:
                self._touch_error = None
        return healthy
