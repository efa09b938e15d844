"""Noticing that the configuration file changed, and parsing it off the main thread.

``ConfigFile`` answers "did the file change since it was last read?" by its
metadata first (device, inode, size, modification and change times, following
symlinks as a Kubernetes ConfigMap's are swapped): an unchanged file is not
read at all, however often it is looked at. Only when the metadata differ is
it read (at most ``config.MAX_BYTES``) and hashed; a file touched but not
changed does not count as a change, and a file that changed to something
unusable counts once, not at every look.

``Loader`` runs one parse (YAML, checks, imports of new handler modules,
producers' factories) at a time on a thread of its own and wakes the main loop
when it is done, so that the main loop keeps answering SIGTERM during a slow
parse or a slow import: a service asked to stop does not wait for it (the
thread is a daemon; its result is dropped).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Callable

from .config import Config, ConfigError, read_file

logger = logging.getLogger("threadpool.service")

Content = bytes | ConfigError  # what reading the file gave
Outcome = Config | ConfigError  # what parsing it gave


class ConfigFile:
    """The configuration file at ``path`` and what was last read from it. Used by one
    thread (the service's control thread)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._stat: tuple[int, ...] | None = None
        self._digest = ""
        self.read()

    def read(self) -> Content:
        """The file's content now (or why it cannot be had), remembered as seen."""
        self._stat = self._signature()
        content = _read(self.path)
        self._digest = _digest(content)
        return content

    def changed(self) -> Content | None:
        """The new content if the file changed since it was last read, else None."""
        signature = self._signature()
        if signature == self._stat:
            return None
        self._stat = signature
        content = _read(self.path)
        digest = _digest(content)
        if digest == self._digest:
            return None
        self._digest = digest
        return content

    def _signature(self) -> tuple[int, ...] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _read(path: str) -> Content:
    try:
        return read_file(path)
    except ConfigError as exc:
        return exc


def _digest(content: Content) -> str:
    if isinstance(content, ConfigError):
        return "unusable: " + str(content)
    return hashlib.sha256(content).hexdigest()


class Loader:
    """One parse at a time on a daemon thread; ``wake()`` is called when it is done."""

    def __init__(self, wake: Callable[[], None]) -> None:
        self._wake = wake
        self._thread: threading.Thread | None = None
        self._result: tuple[str, Outcome] | None = None

    @property
    def busy(self) -> bool:
        """A parse is running, or its result is not taken yet."""
        return self._thread is not None

    def start(self, reason: str, parse: Callable[[], Config]) -> None:
        """Run ``parse()`` (which raises ConfigError for a bad file) for ``reason``."""
        if self._thread is not None:
            raise RuntimeError("a configuration is being loaded already")

        def body() -> None:
            outcome: Outcome
            try:
                outcome = parse()
            except ConfigError as exc:
                outcome = exc
            except Exception as exc:  # parse() promises ConfigError; never lose the loader
                logger.exception("loading the configuration failed")
                outcome = ConfigError([f"loading failed: {type(exc).__name__}: {exc}"])
            self._result = (reason, outcome)
            self._wake()

        self._thread = threading.Thread(target=body, name="config loader", daemon=True)
        self._thread.start()

    def take(self) -> tuple[str, Outcome] | None:
        """(reason, outcome) of the finished parse, once; None while it runs."""
        thread = self._thread
        if thread is None or thread.is_alive():
            return None
        thread.join()
        self._thread = None
        result, self._result = self._result, None
        return result
