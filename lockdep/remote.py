"""The lock graphs of running processes: a service's ``/lockdep`` URL as a graph to merge.

Replicas of one service each learn part of the lock order; an inversion may
exist only across them. ``python -m lockdep merge`` takes, wherever it takes a
saved graph file, the URL of a service's ``/lockdep`` endpoint (``http://`` or
``https://``): ``load_url`` fetches its JSON (``classes`` and ``edges``, as
``lockdep.graph()`` gives them) and returns it in the saved-graph format,
each edge labelled with the URL it came from.

Nothing here imports anything beyond the standard library and ``persist``.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from .persist import FORMAT, VERSION, GraphFileError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from typing import Any

TIMEOUT = 10.0  # seconds to connect and to wait for each read
MAX_BYTES = 256 * 2**20  # a graph larger than this is not a lockdep graph


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def load_url(url: str, timeout: float = TIMEOUT) -> dict[str, Any]:
    """The graph served at ``url`` in the saved-graph format; GraphFileError says what
    went wrong (unreachable, not JSON, not a lockdep document)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = response.read(MAX_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise GraphFileError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (OSError, ValueError) as exc:  # URLError, timeouts, a malformed URL
        reason = getattr(exc, "reason", exc)
        raise GraphFileError(f"{url}: cannot fetch: {reason}") from None
    if len(body) > MAX_BYTES:
        raise GraphFileError(f"{url}: more than {MAX_BYTES} bytes: not a lockdep graph")
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise GraphFileError(f"{url}: not JSON: {exc}") from None
    return from_document(document, url)


def from_document(document: object, source: str) -> dict[str, Any]:
    """A ``/lockdep`` document (or ``lockdep.graph()``) as a saved graph from ``source``."""
    if not isinstance(document, dict) or not isinstance(document.get("edges"), list):
        raise GraphFileError(f'{source}: not a lockdep document (no "edges" list)')
    classes = document.get("classes", [])
    if not isinstance(classes, list):
        raise GraphFileError(f'{source}: "classes" must be a list')
    names = {c["name"] if isinstance(c, dict) else c for c in classes}
    edges = []
    for i, edge in enumerate(document["edges"]):
        if not (
            isinstance(edge, dict)
            and isinstance(edge.get("from"), str)
            and isinstance(edge.get("to"), str)
            and isinstance(edge.get("from_subclass"), int)
            and isinstance(edge.get("to_subclass"), int)
        ):
            raise GraphFileError(f"{source}: edges[{i}] is malformed: {edge!r:.200}")
        edges.append({**edge, "run": source})
        names.update((edge["from"], edge["to"]))
    if not all(isinstance(name, str) for name in names):
        raise GraphFileError(f"{source}: class names must be strings")
    return {"format": FORMAT, "version": VERSION, "classes": sorted(names), "edges": edges}
