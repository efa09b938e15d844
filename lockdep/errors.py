"""The exceptions lockdep raises when ``on_violation="raise"``.

They derive from RuntimeError, like the errors of the ``threading`` module for
lock misuse. Each carries the ``Violation`` it reports as ``.violation``; its
message is the full report.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from .values import Violation


class LockdepError(RuntimeError):
    """A lock-dependency violation, raised before the offending thread blocks."""

    def __init__(self, violation: Violation) -> None:
        super().__init__(violation.report)
        self.violation = violation


class RecursiveLockError(LockdepError):
    """A thread tried to take a lock class (and subclass) that it already holds."""


class LockOrderError(LockdepError):
    """Taking the lock would close a cycle in the lock-order graph."""


class UnlockError(LockdepError):
    """A thread released an owner-checked lock that it does not hold."""


EXCEPTIONS: dict[str, type[LockdepError]] = {
    "recursive": RecursiveLockError,
    "order": LockOrderError,
    "unlock": UnlockError,
}
