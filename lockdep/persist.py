"""Saving lock graphs and merging them: inversions split across processes or test runs.

One process only ever learns an acyclic graph (lockdep refuses the edge that
would close a cycle, and reports it). But process 1 may take A then B while
process 2 takes B then A: each is clean alone, and the program deadlocks the
day both orders meet in one process. ``save(path)`` (or ``LOCKDEP_GRAPH=path``,
at exit) writes the learned graph, merged with what the file already holds;
``python -m lockdep merge FILE...`` reports every cycle of the union.

Classes are matched across processes by name (a ``Mutex`` name, or an
allocation site for ``install()``'s locks), never by numeric id. Writing takes
an exclusive ``flock`` on ``<path>.lock`` and replaces the file atomically, so
processes saving to one file at once lose nothing.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import sys
from collections.abc import Iterator, Sequence

from .tracker import LOCKDEP

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from typing import Any

FORMAT = "lockdep-graph"
VERSION = 1
MAX_CYCLES = 1000

Node = tuple[str, int]  # class name, subclass
EdgeKey = tuple[str, int, str, int]


class GraphFileError(ValueError):
    """A graph file that cannot be read: names the file and the problem."""


def run_label() -> str:
    """How this process is named in saved edges: its program and pid."""
    program = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "python"
    return f"{program} (pid {os.getpid()})"


def snapshot() -> dict[str, Any]:
    """This process's graph in the file format."""
    data = LOCKDEP.graph_data()
    label = run_label()
    for edge in data["edges"]:
        edge["run"] = label
    return {
        "format": FORMAT,
        "version": VERSION,
        "classes": sorted({c["name"] for c in data["classes"]}),
        "edges": data["edges"],
    }


def load(path: str) -> dict[str, Any]:
    """Read and check a graph file; GraphFileError says what is wrong."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as exc:
        raise GraphFileError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise GraphFileError(f"{path}: not JSON: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise GraphFileError(f'{path}: not a lockdep graph (no "format": "{FORMAT}")')
    if data.get("version") != VERSION:
        raise GraphFileError(f"{path}: unsupported version {data.get('version')!r}")
    edges = data.get("edges")
    if not isinstance(edges, list):
        raise GraphFileError(f'{path}: "edges" must be a list')
    for i, edge in enumerate(edges):
        try:
            _edge_key(edge)
        except (KeyError, TypeError, ValueError) as exc:
            raise GraphFileError(f"{path}: edges[{i}] is malformed: {exc!r}") from exc
    return data


def _edge_key(edge: dict[str, Any]) -> EdgeKey:
    key = (edge["from"], edge["from_subclass"], edge["to"], edge["to_subclass"])
    if not (isinstance(key[0], str) and isinstance(key[2], str)):
        raise ValueError("class names must be strings")
    if not (isinstance(key[1], int) and isinstance(key[3], int)):
        raise ValueError("subclasses must be integers")
    return key


def merge(graphs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The union of graphs: each edge once, as first seen, with counts added up."""
    edges: dict[EdgeKey, dict[str, Any]] = {}
    classes: set[str] = set()
    for graph in graphs:
        classes.update(graph.get("classes", ()))
        for edge in graph["edges"]:
            key = _edge_key(edge)
            classes.update((key[0], key[2]))
            kept = edges.get(key)
            if kept is None:
                edges[key] = dict(edge)
            else:
                kept["count"] = kept.get("count", 1) + edge.get("count", 1)
    return {
        "format": FORMAT,
        "version": VERSION,
        "classes": sorted(classes),
        "edges": list(edges.values()),
    }


def save(path: str) -> int:
    """Merge this process's graph into the file at path; returns its edge count."""
    with _locked(path):
        graphs = [snapshot()]
        if os.path.exists(path):
            graphs.insert(0, load(path))
        merged = merge(graphs)
        import tempfile

        directory = os.path.dirname(os.path.abspath(path))
        fd, temp = tempfile.mkstemp(prefix=".lockdep-", suffix=".json", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(merged, f, indent=1, sort_keys=True)
                f.write("\n")
            os.replace(temp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
    return len(merged["edges"])


@contextlib.contextmanager
def _locked(path: str) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # not POSIX: saves are not serialised
        yield
        return
    with open(path + ".lock", "a") as lockfile:
        fcntl.flock(lockfile.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lockfile.fileno(), fcntl.LOCK_UN)


# --- cycles -----------------------------------------------------------------------


def find_cycles(
    graph: dict[str, Any], limit: int = MAX_CYCLES
) -> tuple[list[list[dict[str, Any]]], bool]:
    """The elementary cycles of graph, each as its list of edges; and whether the
    limit cut the list short."""
    by_pair: dict[tuple[Node, Node], dict[str, Any]] = {}
    succ: dict[Node, list[Node]] = {}
    for edge in graph["edges"]:
        a = (edge["from"], edge["from_subclass"])
        b = (edge["to"], edge["to_subclass"])
        by_pair[(a, b)] = edge
        succ.setdefault(a, []).append(b)
        succ.setdefault(b, [])
    cycles: list[list[dict[str, Any]]] = []
    for component in _strongly_connected(succ):
        if len(component) < 2:
            continue
        for nodes in _simple_cycles(succ, component):
            cycles.append([by_pair[(a, nodes[(i + 1) % len(nodes)])] for i, a in enumerate(nodes)])
            if len(cycles) >= limit:
                return cycles, True
    return cycles, False


def _strongly_connected(succ: dict[Node, list[Node]]) -> list[list[Node]]:
    """Tarjan's algorithm, without recursion."""
    index: dict[Node, int] = {}
    low: dict[Node, int] = {}
    on_stack: set[Node] = set()
    stack: list[Node] = []
    components: list[list[Node]] = []
    for root in sorted(succ):
        if root in index:
            continue
        work = [(root, iter(succ[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(succ[child])))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    components.append(component)
    return components


def _simple_cycles(succ: dict[Node, list[Node]], component: list[Node]) -> Iterator[list[Node]]:
    """Every elementary cycle within one strongly connected component, each once:
    cycles are found from their smallest node, through larger nodes only."""
    members = set(component)
    order = sorted(component)
    rank = {node: i for i, node in enumerate(order)}
    for start in order:
        path = [start]
        on_path = {start}
        work = [iter(sorted(n for n in succ[start] if n in members))]
        while work:
            for nxt in work[-1]:
                if nxt == start:
                    yield list(path)
                elif rank[nxt] > rank[start] and nxt not in on_path:
                    path.append(nxt)
                    on_path.add(nxt)
                    work.append(iter(sorted(n for n in succ[nxt] if n in members)))
                    break
            else:
                work.pop()
                on_path.discard(path.pop())


# --- LOCKDEP_GRAPH ----------------------------------------------------------------


def _save_at_exit(path: str) -> None:
    try:
        save(path)
    except Exception as exc:  # never fail the program's exit
        sys.stderr.write(f"lockdep: could not save the lock graph to {path}: {exc}\n")


def save_at_exit(path: str) -> None:
    """Save (merging) to path when the interpreter exits."""
    atexit.register(_save_at_exit, path)


def _from_environment() -> None:
    path = os.environ.get("LOCKDEP_GRAPH")
    if path:
        save_at_exit(path)


_from_environment()
