"""The dependency graph: acyclic by construction, incremental cycle detection."""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lockdep.graph import DependencyGraph


def reachable(edges: set[tuple[int, int]], source: int, target: int) -> bool:
    """Plain model: is there a path of at least one edge from source to target?"""
    todo, seen = [source], set()
    while todo:
        node = todo.pop()
        for x, y in edges:
            if x == node and y not in seen:
                if y == target:
                    return True
                seen.add(y)
                todo.append(y)
    return False


def assert_topological(graph: DependencyGraph) -> None:
    for x, y, _ in graph.edges():
        assert graph._ord[x] < graph._ord[y], (x, y)


def test_edge_that_closes_a_cycle_is_refused_with_the_existing_path() -> None:
    g = DependencyGraph()
    assert g.add_edge(1, 2, "a") is None
    assert g.add_edge(2, 3, "b") is None
    assert g.add_edge(3, 1) == [1, 2, 3]
    assert not g.has_edge(3, 1)
    assert g.edge_count() == 2


def test_self_loop_is_a_cycle_of_one() -> None:
    g = DependencyGraph()
    assert g.add_edge(5, 5) == [5]
    assert g.edge_count() == 0


def test_existing_edge_keeps_its_payload() -> None:
    g = DependencyGraph()
    g.add_edge(1, 2, "first")
    assert g.add_edge(1, 2, "second") is None
    assert g.edge_data(1, 2) == "first"


def test_cycle_report_is_the_shortest_path() -> None:
    g = DependencyGraph()
    for x, y in [(1, 2), (2, 3), (3, 4), (4, 5), (1, 5)]:
        assert g.add_edge(x, y) is None
    assert g.add_edge(5, 1) == [1, 5]


def test_edges_against_creation_order_are_reordered() -> None:
    g = DependencyGraph()
    for n in range(10):
        g.add_node(n)
    # Every edge points backwards in creation order: each one reorders.
    for n in range(9, 0, -1):
        assert g.add_edge(n, n - 1) is None
        assert_topological(g)
    assert g.add_edge(0, 9) == [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]


def test_remove_node_drops_its_edges() -> None:
    g = DependencyGraph()
    g.add_edge(1, 2)
    g.add_edge(2, 3)
    g.remove_node(2)
    assert 2 not in g
    assert g.edge_count() == 0
    assert g.add_edge(3, 1) is None  # no longer a cycle
    g.remove_node(42)  # absent: no-op


def test_reaches() -> None:
    g = DependencyGraph()
    g.add_edge(1, 2)
    g.add_edge(2, 3)
    assert g.reaches(1, 3)
    assert not g.reaches(3, 1)
    assert not g.reaches(1, 1)
    assert not g.reaches(1, 99)


operations = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(0, 7), st.integers(0, 7)),
        st.tuples(st.just("remove"), st.integers(0, 7), st.just(0)),
    ),
    max_size=60,
)


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(operations)
def test_matches_a_plain_reachability_model(ops: list[tuple[str, int, int]]) -> None:
    g = DependencyGraph()
    model: set[tuple[int, int]] = set()
    for op, x, y in ops:
        if op == "remove":
            g.remove_node(x)
            model = {(a, b) for a, b in model if x not in (a, b)}
            continue
        closes = x == y or reachable(model, y, x)
        result = g.add_edge(x, y)
        if closes:
            assert result is not None, f"{x}->{y} closes a cycle in the model"
            assert result[0] == y and result[-1] == x
            for a, b in pairwise(result):
                assert (a, b) in model
        else:
            assert result is None, f"{x}->{y} was refused, cycle {result}"
            model.add((x, y))
        assert {(a, b) for a, b, _ in g.edges()} == model
        assert_topological(g)


def test_back_edges_are_followed_by_cycle_checks() -> None:
    g = DependencyGraph()
    assert g.add_edge(1, 2, "a") is None
    assert g.add_edge(2, 1, "b") == [1, 2]  # refused
    g.add_back_edge(2, 1, "b")  # kept outside the order, by the caller's judgment
    assert g.has_edge(2, 1) and g.edge_data(2, 1) == "b" and g.has_back_edges()
    assert g.add_edge(1, 3, "c") is None
    assert g.add_edge(3, 2, "d") == [2, 1, 3]  # closes 2 -> 1 -> 3 -> 2 through the back edge
    assert g.edge_count() == 3
    g.remove_node(2)
    assert not g.has_back_edges() and g.edge_count() == 1


def test_disjoint_path_needs_pairwise_disjoint_labels() -> None:
    g = DependencyGraph()
    g.add_edge(1, 2, frozenset({"g"}))
    g.add_edge(2, 3, frozenset({"g", "h"}))
    g.add_edge(1, 4, frozenset())
    g.add_edge(4, 3, frozenset({"g"}))

    def labels(data: frozenset[str]) -> frozenset[str]:
        return data

    assert g.disjoint_path(1, 3, frozenset(), labels) == [1, 4, 3]  # 1-2-3 share g
    assert g.disjoint_path(1, 3, frozenset({"h"}), labels) == [1, 4, 3]
    assert g.disjoint_path(1, 3, frozenset({"g"}), labels) is None  # g serialises each
    assert g.disjoint_path(2, 3, frozenset(), labels) == [2, 3]


def test_edge_to_a_new_node_skips_the_checks_and_keeps_the_order() -> None:
    g = DependencyGraph()
    g.add_edge(1, 2)
    g.add_edge_to_new(2, 3)
    g.add_edge_to_new(5, 6)
    assert g.has_edge(2, 3) and g.has_edge(5, 6)
    assert g.add_edge(3, 1) == [1, 2, 3]
    assert_topological(g)
