"""What ``lockdep.graph()`` and ``lockdep.stats()`` report: read from the registry and
the checker's orders (the tracker calls these under its mutex)."""

from __future__ import annotations

from collections.abc import Callable

from . import lockstats
from .checks import Checker
from .keys import class_of_key, subclass_of_key
from .registry import ClassRegistry

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from typing import Any


def graph(
    registry: ClassRegistry, checker: Checker, class_label: Callable[[int], str]
) -> dict[str, Any]:
    """The classes, and the edges between them with their first-seen sites and guards."""

    def name_of(key: int) -> str:
        try:
            return registry.name(class_of_key(key))
        except KeyError:
            return f"<forgotten class {class_of_key(key)}>"

    classes = [{"id": cid, "name": name, "references": refs} for cid, name, refs in registry]
    edges = [
        {
            "from": name_of(source),
            "from_subclass": subclass_of_key(source),
            "to": name_of(target),
            "to_subclass": subclass_of_key(target),
            **info.as_dict(),
            "guards": sorted(class_label(g) for g in info.guards),
        }
        for source, target, info in checker.classes.graph.edges()
    ]
    return {"classes": classes, "edges": edges}


def counts(
    registry: ClassRegistry,
    checker: Checker,
    merged: dict[int, lockstats.Record],
    *,
    stats: bool,
) -> dict[str, Any]:
    """The sizes of what was learned, the checks made, and per-class lock statistics."""
    return {
        "classes": len(registry),
        "max_classes": registry.max_classes,
        "edges": checker.classes.graph.edge_count(),
        "instances": len(checker.instances),
        "instance_edges": checker.instances.edge_count(),
        "checks": checker.checks,
        "cache_hits": checker.cache_hits if stats else None,
        "locks": lockstats.summarize(merged, ((cid, name) for cid, name, _ in registry)),
    }
