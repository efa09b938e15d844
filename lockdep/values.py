"""lockdep's value types: sites, held locks, edges, violations, and the names of kinds
and responses.

Plain data, shared by detection (``tracker``, ``order``), the text of reports
(``report``) and their delivery (``violations``). Nothing here knows how a
violation is found or how it is printed.
"""

from __future__ import annotations

from types import CodeType

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from typing import Any, Final, NamedTuple
else:
    from .records import NamedTuple  # typing's, without importing typing

KINDS: Final = ("recursive", "order", "unlock", "wait_timeout")
"""The kinds of violation."""

RESPONSES: Final = ("raise", "log", "abort")
"""The named responses to a violation (``configure(on_violation=...)``; a callable also works)."""


class Site(NamedTuple):
    """Where a lock was taken: file, line, function."""

    file: str
    line: int
    function: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line} in {self.function}"


UNKNOWN_SITE: Final = Site("<unknown>", 0, "<unknown>")


def site_of(code: CodeType | None, lasti: int | None) -> Site:
    """The site of the instruction at byte offset lasti of code."""
    if code is None or lasti is None:
        return UNKNOWN_SITE
    line = code.co_firstlineno
    for start, end, lineno in code.co_lines():
        if start <= lasti < end:
            if lineno is not None:
                line = lineno
            break
    return Site(code.co_filename, line, code.co_name)


def label(name: str, subclass: int) -> str:
    """A class as shown in reports: its name, with ``/subclass`` when not 0."""
    return name if subclass == 0 else f"{name}/{subclass}"


class HeldLock(NamedTuple):
    """One entry of a thread's held stack, as returned by ``lockdep.held_locks``.

    ``instance`` numbers the lock among the live instances of its class once
    lockdep keeps an order between them (0: none yet).
    """

    name: str
    subclass: int
    lock: object
    mode: str  # "write" or "read"
    trylock: bool
    site: Site
    stack: tuple[str, ...] | None = None
    reentry: bool = False
    instance: int = 0

    @property
    def label(self) -> str:
        return label(self.name, self.subclass)

    @property
    def instance_label(self) -> str:
        """The label, and the instance number when there is one: ``"bank.py:8"#3``."""
        return f'"{self.label}"#{self.instance}' if self.instance else f'"{self.label}"'

    def describe(self) -> str:
        how = []
        if self.mode == "read":
            how.append("read")
        if self.trylock:
            how.append("trylock")
        if self.reentry:
            how.append("re-entered")
        extra = f" ({', '.join(how)})" if how else ""
        return f"{self.instance_label}{extra} at {self.site}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "class": self.name,
            "subclass": self.subclass,
            "instance": self.instance,
            "mode": self.mode,
            "trylock": self.trylock,
            "reentry": self.reentry,
            "site": str(self.site),
            "stack": list(self.stack) if self.stack is not None else None,
        }


Where = tuple["CodeType | None", int]  # a site not yet turned into file:line (code, lasti)


class EdgeInfo:
    """What lockdep keeps about a dependency A -> B: where it was first seen, a count,
    and its guards.

    ``count`` counts validations: the chain cache makes one per distinct held
    chain that leads to the edge, not one per acquisition. ``guards`` are the
    graph keys of the locks held (in write mode) at every sighting, other than
    A and B: an intersection that only shrinks. A cycle whose edges share a
    guard cannot deadlock (the guard serialises them); such an edge is kept
    outside the order, ``guarded``. The sites may be given as (code, offset)
    and are turned into file:line when first read.
    """

    __slots__ = (
        "_from_site",
        "_to_site",
        "count",
        "from_stack",
        "guarded",
        "guards",
        "thread",
        "to_stack",
    )

    def __init__(
        self,
        thread: str,
        from_site: Site | Where,
        to_site: Site | Where,
        from_stack: tuple[str, ...] | None = None,
        to_stack: tuple[str, ...] | None = None,
        guards: frozenset[int] = frozenset(),
    ) -> None:
        self.thread = thread
        self._from_site = from_site
        self._to_site = to_site
        self.from_stack = from_stack
        self.to_stack = to_stack
        self.count = 1
        self.guards = guards
        self.guarded = False

    @property
    def from_site(self) -> Site:
        site = self._from_site
        if not isinstance(site, Site):
            site = self._from_site = site_of(*site)
        return site

    @property
    def to_site(self) -> Site:
        site = self._to_site
        if not isinstance(site, Site):
            site = self._to_site = site_of(*site)
        return site

    def __repr__(self) -> str:
        return f"<EdgeInfo {self.from_site} -> {self.to_site} in {self.thread!r} x{self.count}>"

    def as_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "thread": self.thread,
            "from_site": str(self.from_site),
            "to_site": str(self.to_site),
            "from_stack": list(self.from_stack) if self.from_stack is not None else None,
            "to_stack": list(self.to_stack) if self.to_stack is not None else None,
            "guarded": self.guarded,
        }


class ChainLink(NamedTuple):
    """One edge of an existing dependency chain, for an order report."""

    source: str
    target: str
    info: EdgeInfo | None


class Violation:
    """A lockdep violation: what the response (raise, log, abort, callable) receives.

    ``kind`` is one of ``KINDS``; ``classes`` names the classes involved (for
    ``order``, the whole cycle in order, starting with the class being taken;
    for a cycle among instances of one class, that class); ``held`` is what the
    thread (or asyncio task) held; ``chain`` the existing dependency chain of an
    order violation; ``instances`` whether the cycle is among instances of one
    class; ``report`` the full text.
    """

    __slots__ = (
        "chain",
        "classes",
        "held",
        "instances",
        "kind",
        "report",
        "task",
        "thread_id",
        "thread_name",
    )

    def __init__(
        self,
        kind: str,
        classes: tuple[str, ...],
        thread_name: str,
        thread_id: int,
        held: list[HeldLock],
        task: str | None = None,
    ) -> None:
        self.kind = kind
        self.classes = classes
        self.thread_name = thread_name
        self.thread_id = thread_id
        self.held = held
        self.task = task
        self.report = ""
        self.chain: list[ChainLink] = []
        self.instances = False

    def __repr__(self) -> str:
        return (
            f"<lockdep.Violation {self.kind} {' -> '.join(self.classes)} in {self.thread_name!r}>"
        )

    @property
    def key(self) -> tuple[str, frozenset[str]]:
        """Violations with equal keys are the same violation (reported once when logging)."""
        return self.kind, frozenset(self.classes)

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "classes": list(self.classes),
            "instances": self.instances,
            "thread": self.thread_name,
            "thread_id": self.thread_id,
            "task": self.task,
            "held": [h.as_dict() for h in self.held],
            "chain": [
                {"from": c.source, "to": c.target, **(c.info.as_dict() if c.info else {})}
                for c in self.chain
            ],
            "report": self.report,
        }
