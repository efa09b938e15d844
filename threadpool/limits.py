"""What a full queue and a passed deadline look like to the user: errors, policies, checks.

``QueueFull`` is raised by ``queue()`` on a bounded queue (``max_items``) that
stays full under the ``reject`` policy, or past ``block_timeout`` under
``block``. ``DeadlineExpired`` is the status an item is finished with when its
deadline passed before a worker took it: the finish step sees it as
``queue.error``, and an executor's future raises it.
"""

from __future__ import annotations

from typing import Any

from .heartbeat import check_seconds

POLICIES = ("reject", "block", "caller_runs", "drop_oldest")
"""What ``queue()`` does when a bounded queue is full:

* ``reject``: raise ``QueueFull`` (counted as rejected);
* ``block``: wait for room, at most ``block_timeout`` seconds (None: as long as it
  takes), then raise ``QueueFull`` (counted as rejected);
* ``caller_runs``: the calling thread runs the item's process and finish steps
  itself (counted as processed), which slows the producer to the workers' pace;
* ``drop_oldest``: the oldest queued item makes room: it is handed to ``on_drop``
  and counted as dropped.
"""


class QueueFull(Exception):
    """A bounded queue had no room for an item (``reject``, or ``block`` timed out).

    ``queue`` is the queue's name, ``max_items`` its bound, ``policy`` its policy.
    The item was not queued.
    """

    def __init__(self, queue: str, max_items: int, policy: str, why: str) -> None:
        super().__init__(
            f"queue {queue!r} is full (max_items {max_items}, policy {policy!r}): {why}"
        )
        self.queue = queue
        self.max_items = max_items
        self.policy = policy


class DeadlineExpired(TimeoutError):
    """An item's deadline passed before a worker took it; it was not processed.

    ``queue`` is the name of the queue it was in.
    """

    def __init__(self, queue: str) -> None:
        super().__init__(
            f"the deadline of an item of queue {queue!r} passed before a worker took it; "
            f"it was not processed"
        )
        self.queue = queue


def check_max_items(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"max_items must be an int >= 1 or None, got {value!r}")
    if value < 1:
        raise ValueError(f"max_items must be an int >= 1 or None, got {value!r}")
    return value


def check_policy(value: object) -> str:
    if value not in POLICIES:
        raise ValueError(f"policy must be one of {', '.join(map(repr, POLICIES))}, got {value!r}")
    return str(value)


def check_optional_seconds(what: str, value: object) -> float | None:
    return None if value is None else check_seconds(what, value)


def check_deadline(value: object) -> float:
    """A deadline: a number of seconds > 0 from now."""
    seconds = check_seconds("deadline", value)
    if seconds == 0:
        raise ValueError("deadline must be a number of seconds > 0, got 0")
    return seconds


def check_hook(what: str, fn: object) -> Any:
    if fn is not None and not callable(fn):
        raise TypeError(f"{what} must be a callable taking the item, or None; got {fn!r}")
    return fn
