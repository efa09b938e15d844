"""The text of lockdep's reports: violations, the class limit, and merged-graph cycles.

Text only: detection (``tracker``) gathers the facts and ``violations`` builds
and delivers the ``Violation``; this module turns facts into reports that read
like Linux's lockdep. Formatting never raises into the host program: a
failure while building a report yields a shorter report that says so
(``safe_format``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .values import ChainLink, HeldLock, Site, Violation, label

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from typing import Any

# --- text -------------------------------------------------------------------

_RULE = "=" * 64
_THIN = "-" * 64


def _header(title: str) -> list[str]:
    return [_RULE, f"lockdep: {title}", _THIN]


def _thread(v: Violation) -> str:
    task = f", task '{v.task}'" if v.task else ""
    return f"thread '{v.thread_name}' (ident {v.thread_id}){task}"


def _held_section(v: Violation) -> list[str]:
    if not v.held:
        return ["", f"{_thread(v)} holds no tracked lock."]
    lines = ["", f"{len(v.held)} lock(s) held by {_thread(v)}:"]
    for i, h in enumerate(v.held):
        lines.append(f"  #{i}: {h.describe()}")
        lines.extend(_indent_stack(h.stack, "        "))
    return lines


def _indent_stack(stack: Sequence[str] | None, prefix: str) -> list[str]:
    if not stack:
        return []
    out: list[str] = []
    for frame in stack:
        out.extend(prefix + part for part in frame.rstrip("\n").split("\n"))
    return out


def format_recursive(v: Violation, taking: HeldLock, earlier: HeldLock, same_instance: bool) -> str:
    what = "the same lock" if same_instance else "another lock of the same class"
    lines = _header("possible recursive locking detected")
    lines += [
        f"{_thread(v)} is trying to acquire lock:",
        f"  {taking.describe()}",
        *_indent_stack(taking.stack, "      "),
        "",
        f"but it already holds {what}:",
        f"  {earlier.describe()}",
        *_indent_stack(earlier.stack, "      "),
        "",
        "Possible unsafe locking scenario:",
        "",
        f"  lock({earlier.label});",
        f"  lock({taking.label});",
        "",
        " *** DEADLOCK ***",
    ]
    if not same_instance:
        lines += [
            "",
            "If nesting two locks of one class is intended, say so with a subclass:",
            "  with outer: ... with inner.nested(1): ...   (or inner.lock(subclass=1))",
        ]
    lines += _held_section(v)
    lines.append(_RULE)
    return "\n".join(lines)


def format_order(v: Violation, taking: HeldLock, holding: HeldLock) -> str:
    title = "possible circular locking dependency detected"
    if v.instances:
        depends = [
            "which lock already depends on the new lock: the two are instances of one class",
            f'("{taking.label}") that were taken in the opposite order before.',
        ]
    else:
        depends = ["which lock already depends on the new lock."]
    lines = _header(title)
    lines += [
        f"{_thread(v)} is trying to acquire lock:",
        f"  {taking.describe()}",
        *_indent_stack(taking.stack, "      "),
        "",
        "but it already holds lock:",
        f"  {holding.describe()}",
        *_indent_stack(holding.stack, "      "),
        "",
        *depends,
        "",
        "The existing dependency chain is:",
    ]
    for i, link in enumerate(v.chain):
        lines.append(f"  #{i}: {link.source} -> {link.target}")
        if link.info is not None:
            info = link.info
            lines.append(f"      first seen in thread '{info.thread}':")
            lines.append(f"        {link.source} taken at {info.from_site}")
            lines.extend(_indent_stack(info.from_stack, "          "))
            lines.append(f"        then {link.target} taken at {info.to_site}")
            lines.extend(_indent_stack(info.to_stack, "          "))
    held_name, taking_name = _plain(holding.instance_label), _plain(taking.instance_label)
    lines += [
        "and this acquisition would add:",
        f"  #{len(v.chain)}: {held_name} -> {taking_name}",
        f"        {held_name} taken at {holding.site}",
        f"        then {taking_name} being taken at {taking.site}",
        "",
        "Possible unsafe locking scenario:",
        "",
    ]
    lines += _scenario(held_name, taking_name, v.chain)
    lines += ["", " *** DEADLOCK ***"]
    lines += _held_section(v)
    lines.append(_RULE)
    return "\n".join(lines)


def _plain(instance_label: str) -> str:
    """An instance label without the quotes around its class: a"#2 -> a#2."""
    return instance_label.replace('"', "")


def _scenario(holding: str, taking: str, chain: list[ChainLink]) -> list[str]:
    # Two columns, as Linux prints them: this thread, and one standing for the
    # thread(s) that established the chain.
    width = max(24, len(holding) + 12, len(taking) + 12)
    other_first = chain[0].source if chain else taking
    other_last = chain[-1].target if chain else holding
    rows = [
        ("this thread", "another thread"),
        ("-----------", "--------------"),
        (f"lock({holding});", ""),
        ("", f"lock({other_first});"),
    ]
    if len(chain) > 1:
        rows.append(("", "..."))
    rows += [("", f"lock({other_last});"), (f"lock({taking});", "")]
    return [f"  {left:<{width}}{right}".rstrip() for left, right in rows]


def format_unlock(v: Violation, lock_label: str, site: Site, holder: str | None) -> str:
    lines = _header("bad unlock balance detected")
    lines += [
        f"{_thread(v)} is trying to release lock:",
        f'  "{lock_label}" at {site}',
        "",
        "but it does not hold it: "
        + (f"it is held by {holder}." if holder else "it is not locked at all."),
    ]
    lines += _held_section(v)
    lines.append(_RULE)
    return "\n".join(lines)


def format_wait_timeout(
    v: Violation,
    lock_label: str,
    site: Site,
    waited: float,
    holders: Sequence[tuple[str, HeldLock | None, list[str]]],
) -> str:
    lines = _header(f"lock wait exceeded {waited:g} s")
    lines += [
        f"{_thread(v)} has waited {waited:g} s for lock:",
        f'  "{lock_label}" at {site}',
    ]
    if not holders:
        lines += ["", "No thread is recorded as holding it (taken untracked or already released)."]
    for name, entry, stack in holders:
        where = f" since {entry.site}" if entry is not None else ""
        lines += ["", f"It is held by {name}{where}; that thread's current stack:"]
        lines.extend(_indent_stack(stack, "  ") or ["  <stack not available>"])
    lines += ["", "The wait goes on."]
    lines += _held_section(v)
    lines.append(_RULE)
    return "\n".join(lines)


def format_limit(limit: int, classes: int, name: str) -> str:
    return (
        f"lockdep: the class limit is reached: max_classes={limit}, {classes} classes all have "
        f"live locks, so class {name!r} cannot be registered. Lock validation is now off for "
        f"the rest of this run; the program goes on. Raise the limit with "
        f"lockdep.configure(max_classes=N) (or the service's lockdep.max_classes)."
    )


def safe_format(v: Violation, render: Callable[[], str]) -> str:
    """Run a formatter; if it fails, return a short report that says why."""
    try:
        return render()
    except Exception as exc:  # a report must never take the program down
        return (
            f"lockdep: {v.kind} violation involving {', '.join(v.classes)} in {_thread(v)} "
            f"(the full report could not be built: {exc!r})"
        )


# --- merged graphs (python -m lockdep merge) ------------------------------------


def format_cycles(cycles: list[list[dict[str, Any]]], truncated: bool) -> str:
    """The cycles of a merged graph, each edge with the run and sites it was seen in."""
    lines = []
    for number, cycle in enumerate(cycles, 1):
        names = [label(e["from"], e["from_subclass"]) for e in cycle]
        lines.append(f"cycle {number}: {' -> '.join([*names, names[0]])}")
        for edge in cycle:
            source = label(edge["from"], edge["from_subclass"])
            target = label(edge["to"], edge["to_subclass"])
            lines.append(f"  {source} -> {target}")
            lines.append(
                f"      first seen in {edge.get('run', 'an unnamed run')}, "
                f"thread '{edge.get('thread', '?')}':"
            )
            lines.append(f"        {source} taken at {edge.get('from_site', '?')}")
            lines.append(f"        then {target} taken at {edge.get('to_site', '?')}")
        lines.append("")
    if truncated:
        lines.append(f"(stopped after {len(cycles)} cycles)")
    return "\n".join(lines)
