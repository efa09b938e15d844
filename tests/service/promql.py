"""The vector selectors of a PromQL expression (``name{matchers}``), for checking that a
dashboard's or a rule's queries only name series the service exports.

A small scanner, not a parser: it knows identifiers, strings, ``{...}`` matchers, ``[...]``
ranges, and that a name followed by ``(`` is a function or an aggregation, that the
label lists after ``by``, ``without``, ``on``, ``ignoring``, ``group_left`` and
``group_right`` are label names, and which words are operators and aggregations.
"""

from __future__ import annotations

import re

KEYWORDS = {"and", "or", "unless", "bool", "offset", "atan2", "inf", "nan"}
# Aggregations may be followed by a `by (...)` clause before their parenthesis.
AGGREGATIONS = {
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
}
LABEL_LISTS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
NAME = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


def selectors(expr: str) -> list[str]:
    """Each vector selector of ``expr``, as written (with its matchers, if any)."""
    found: list[str] = []
    i, n = 0, len(expr)
    while i < n:
        c = expr[i]
        if c in "\"'`":
            i = _skip_string(expr, i)
        elif c == "[":
            i = expr.index("]", i) + 1
        elif c == "{":  # a selector without a name
            end = _skip_braces(expr, i)
            found.append(expr[i:end])
            i = end
        elif c.isdigit() or (c == "." and i + 1 < n and expr[i + 1].isdigit()):
            while i < n and (expr[i].isalnum() or expr[i] in "._"):
                i += 1  # a number, or a duration after offset
        elif NAME.match(expr, i):
            match = NAME.match(expr, i)
            assert match is not None
            word, i = match.group(), match.end()
            j = _skip_space(expr, i)
            if word in LABEL_LISTS:
                if j < n and expr[j] == "(":
                    i = expr.index(")", j) + 1
            elif word in KEYWORDS or word in AGGREGATIONS or (j < n and expr[j] == "("):
                pass  # an operator, or a function or aggregation name
            elif j < n and expr[j] == "{":
                end = _skip_braces(expr, j)
                found.append(word + expr[j:end])
                i = end
            else:
                found.append(word)
        else:
            i += 1
    return found


def _skip_space(expr: str, i: int) -> int:
    while i < len(expr) and expr[i].isspace():
        i += 1
    return i


def _skip_string(expr: str, i: int) -> int:
    quote, i = expr[i], i + 1
    while expr[i] != quote:
        i += 2 if expr[i] == "\\" else 1
    return i + 1


def _skip_braces(expr: str, i: int) -> int:
    i += 1
    while expr[i] != "}":
        i = _skip_string(expr, i) if expr[i] in "\"'`" else i + 1
    return i + 1
