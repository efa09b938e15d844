"""The class of a lock made by code nobody annotated: its role (SPEC 3.1).

A ``Mutex`` is told its class. A ``threading.Lock()`` made under ``install()``
is not, and one allocation site may make locks with different roles; so the
class is the allocation site, refined:

* by the code object and instruction, not the file and line: ``a, b = Lock(),
  Lock()`` makes two classes;
* by the type of the object the lock is made for (``self`` of the allocating
  method): the lock a base class makes is one class per subclass, and every
  ``logging.Handler`` type gets its own;
* where the site is a generic helper (a plain function that returns the lock
  it makes, such as ``make_lock()``, or a ``lambda``) or generated code (a
  ``dataclasses`` ``default_factory`` runs in a generated ``__init__``), by the
  first caller outside it, and the object that caller works for.

Comprehensions are transparent (``[Lock() for _ in range(5)]`` belongs to the
function that holds it, on every Python version). Instances of one class are
then ordered among themselves by the tracker.

Names are portable (module import paths, see ``naming``), one per class:
``bank/accounts.py:12 in Account.__init__``, ``... for SavingsAccount``,
``util.py:3 in make_lock via bank/accounts.py:12 in Account.__init__``. Two
sites whose names would be equal (two locks made on one line) are told apart
by the column of the call.

A site is analysed once and kept, with a reference to its code object (so the
code's ``id`` is never reused under it); a program has finitely many sites.
The types locks are made for are not kept alive: a class refined by a type
that is collected gives its registry reference back. Making a lock then costs
a frame lookup and a few dict lookups.

Where the site alone decides the class, or the site and the type of ``self``
(a lock made in a method, not in a comprehension), the class is also kept in
``FAST``, one dict lookup away, which the C hot path reads too: it makes such
locks without calling Python (see ``fastpath``).
"""

from __future__ import annotations

import weakref
from types import CodeType, FrameType

from .keys import CLASS_STRIDE
from .naming import function_name, module_path
from .tracker import LOCKDEP
from .values import site_of

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from typing import Final

PLAIN: Final = 0  # module level, class body, a function keeping its lock: the site is the class
METHOD: Final = 1  # refined by type(self)
HELPER: Final = 2  # refined by the first caller outside, and the object it works for
GENERATED: Final = 3  # generated code: the same, skipping generated frames

_CO_OPTIMIZED: Final = 0x0001  # a function's code (not a module or class body)
_COMPREHENSIONS: Final = frozenset({"<listcomp>", "<setcomp>", "<dictcomp>", "<genexpr>"})
_CALLS: Final = frozenset({"PRECALL", "CALL", "CALL_METHOD", "CALL_FUNCTION", "CALL_KW"})
_LASTI_BITS: Final = 20  # as _fastpath.c's SITE_LASTI_BITS


class _Site:
    """An allocation site: how its locks get their class, and the classes made so far."""

    __slots__ = ("code", "kind", "lasti", "owner", "roles", "tkey")

    def __init__(self, code: CodeType, lasti: int, kind: int, owner: CodeType) -> None:
        self.code = code  # kept alive: its id is part of the key
        self.lasti = lasti  # the call's offset (see call_offset)
        self.owner = owner  # the code whose function the lock belongs to
        self.kind = kind
        self.tkey: int | None = None  # PLAIN: the class
        # (id(caller code), caller offset) -> the caller's code (kept alive: its id
        # is part of the key) and the classes by the type the lock is made for.
        self.roles: dict[tuple[int, int], tuple[CodeType | None, _ByType]] = {}


class _ByType:
    """The classes of one site (and caller), by the type the lock is made for.

    Types are not kept alive (a program may make classes dynamically): when one
    is collected, its class's reference is dropped, so that the registry may
    reuse the id once ids run short, and its name is free again.
    """

    __slots__ = ("fast", "refs", "typed", "untyped")

    def __init__(self) -> None:
        self.untyped: int | None = -1  # -1: not made yet
        self.typed: dict[int, tuple[int | None, str]] = {}  # id(type) -> tkey, name
        self.refs: dict[int, weakref.ref[type]] = {}
        self.fast: dict[int, int] = {}  # id(type) -> tkey, the tracked ones (see FAST)

    def get(self, made_for: type | None) -> int | None:
        if made_for is None:
            return self.untyped
        found = self.typed.get(id(made_for))
        return found[0] if found is not None else -1

    def put(self, made_for: type | None, tkey: int | None, name: str) -> None:
        if made_for is None:
            self.untyped = tkey
            return
        key = id(made_for)
        self.typed[key] = (tkey, name)
        if tkey is not None:
            self.fast[key] = tkey
        try:
            self.refs[key] = weakref.ref(made_for, lambda _ref: self._gone(key))
        except TypeError:  # a type that refuses weak references: kept, then
            pass

    def _gone(self, key: int) -> None:
        # From a finalizer: nothing here may block.
        self.fast.pop(key, None)
        self.refs.pop(key, None)
        tkey, name = self.typed.pop(key, (None, ""))
        _names.pop(name, None)
        if tkey is not None:
            LOCKDEP.unregister_later(tkey // CLASS_STRIDE)


# (id(code), instruction offset) -> _Site. Code objects hash slowly (their
# contents, each time): ids are cheap, and _Site keeps the code alive.
_sites: dict[tuple[int, int], _Site] = {}
_names: dict[str, object] = {}  # class name -> the key that took it

# Site key (see site_key) -> the class of the locks made there, when the site
# decides it (PLAIN): its tkey; when a method's site and the type of self decide
# it: id(type(self)) -> tkey (a _ByType's fast). Tracked classes only: a miss
# goes the long way, which is also how a site is first entered here.
FAST: dict[int, int | dict[int, int]] = {}


def site_key(code: CodeType, lasti: int) -> int | None:
    """FAST's key for an instruction of code: code's id (unique among live objects
    even shifted right by 3) and the offset, packed; None for an offset too large."""
    if not 0 <= lasti < 1 << _LASTI_BITS:
        return None
    return id(code) >> 3 << _LASTI_BITS | lasti


def class_tkey(frame: FrameType) -> int | None:
    """The tkey for a lock allocated at frame's current instruction (None: untracked)."""
    code = frame.f_code
    lasti = frame.f_lasti
    key = site_key(code, lasti)
    found = FAST.get(key) if key is not None else None
    if found is not None:
        if isinstance(found, int):
            return found
        try:
            tkey = found.get(id(type(frame.f_locals["self"])))
        except KeyError:  # deleted
            tkey = None
        if tkey is not None:
            return tkey
    site = _sites.get((id(code), lasti))
    if site is None:
        site = _site(frame, code, lasti)
    if site.kind == PLAIN:
        if site.tkey is None:
            site.tkey = _register((id(code), site.lasti), _where(frame, site.owner), frame)
        if site.tkey is not None and key is not None:
            FAST[key] = site.tkey
        return site.tkey
    owner = _owner_frame(frame)
    caller = None
    if site.kind == METHOD:
        made_for = _self_type(owner)
    else:
        caller, made_for = _outside(owner)
    where = (
        (id(caller.f_code), call_offset(caller.f_code, caller.f_lasti))
        if caller is not None
        else (0, 0)
    )
    role = site.roles.get(where)
    if role is None:
        role = site.roles[where] = (caller.f_code if caller is not None else None, _ByType())
    by_type = role[1]
    if site.kind == METHOD and owner is frame and key is not None:
        FAST.setdefault(key, by_type.fast)
    tkey = by_type.get(made_for)
    if tkey == -1:
        name = _role_name(frame, owner, site, made_for, caller)
        tkey = _register((id(code), site.lasti, *where, id(made_for)), name, frame)
        by_type.put(made_for, tkey, name)
    return tkey


def _site(frame: FrameType, code: CodeType, lasti: int) -> _Site:
    """The site of frame's current instruction, analysed the first time. It is known by
    its call instruction: while a call runs, 3.11+ report the call's offset, one in its
    inline cache, or (3.11) its PRECALL's, depending on how the call was specialised."""
    start = call_offset(code, lasti)
    site = _sites.get((id(code), start))
    if site is None:
        site = _sites[(id(code), start)] = _analyse(frame, start)
    _sites[(id(code), lasti)] = site
    return site


def call_offset(code: CodeType, lasti: int) -> int:
    """The offset of the instruction at lasti, a call's: lasti, unless it points into
    the inline cache entries that follow an instruction (3.11+) or at a PRECALL (3.11),
    whose CALL follows."""
    import opcode  # imports no module that makes a lock while it is imported

    cache = opcode.opmap.get("CACHE")
    if cache is None or lasti < 0:
        return lasti
    raw = code.co_code
    while lasti > 0 and raw[lasti] == cache:
        lasti -= 2
    if raw[lasti] == opcode.opmap.get("PRECALL"):
        lasti += 2
        while lasti < len(raw) and raw[lasti] == cache:
            lasti += 2
    return lasti


def _owner_frame(frame: FrameType) -> FrameType:
    """The frame whose function the lock belongs to: comprehensions are transparent."""
    while frame.f_code.co_name in _COMPREHENSIONS and frame.f_back is not None:
        frame = frame.f_back
    return frame


def _analyse(frame: FrameType, lasti: int) -> _Site:
    owner = _owner_frame(frame).f_code
    if owner.co_filename.startswith("<"):
        kind = GENERATED
    elif not owner.co_flags & _CO_OPTIMIZED:
        kind = PLAIN
    elif owner.co_argcount >= 1 and owner.co_varnames[0] == "self":
        kind = METHOD
    elif _returns_what_it_makes(frame.f_code, frame.f_lasti):
        kind = HELPER
    else:
        kind = PLAIN  # main(), a thread's target, a test: the lock is its own
    return _Site(frame.f_code, lasti, kind, owner)


def _returns_what_it_makes(code: CodeType, lasti: int) -> bool:
    """Whether the call at lasti is returned at once: ``return Lock()``, or
    ``lock = Lock(); return lock``."""
    import dis  # imports no module that makes a lock while it is imported

    instructions = list(dis.get_instructions(code))
    # The instruction running at lasti (f_lasti may point into its inline caches).
    here = max((i for i, x in enumerate(instructions) if x.offset <= lasti), default=-1)
    following = instructions[here + 1 :]
    while following and following[0].opname in _CALLS:
        following = following[1:]
    names = [x.opname for x in following[:3]]
    if names[:1] == ["RETURN_VALUE"]:
        return True
    return (
        len(names) == 3
        and names[0] == "STORE_FAST"
        and names[1].startswith("LOAD_FAST")
        and names[2] == "RETURN_VALUE"
        and following[0].argval == following[1].argval
    )


def _self_type(frame: FrameType) -> type | None:
    code = frame.f_code
    if code.co_flags & _CO_OPTIMIZED and code.co_argcount >= 1 and code.co_varnames[0] == "self":
        try:
            return type(frame.f_locals["self"])
        except KeyError:  # deleted
            return None
    return None


def _outside(owner: FrameType) -> tuple[FrameType | None, type | None]:
    """For a helper or generated code: the first caller outside it (generated frames
    skipped), and the type of the object the lock is made for (the first self on
    the way, the caller's included)."""
    made_for = _self_type(owner)
    caller = owner.f_back
    while caller is not None and caller.f_code.co_filename.startswith("<"):
        if made_for is None:
            made_for = _self_type(caller)
        caller = caller.f_back
    if caller is None:
        return None, made_for
    caller = _owner_frame(caller)
    if made_for is None:
        made_for = _self_type(caller)
    return caller, made_for


def _where(frame: FrameType, code: CodeType | None = None) -> str:
    """``module/path.py:line in function``: frame's current line, in code's function
    (the owner of a comprehension)."""
    code = code or frame.f_code
    line = site_of(frame.f_code, frame.f_lasti).line
    return f"{module_path(code, frame.f_globals)}:{line} in {function_name(code)}"


def _role_name(
    frame: FrameType,
    owner: FrameType,
    site: _Site,
    made_for: type | None,
    caller: FrameType | None,
) -> str:
    if site.kind == GENERATED and made_for is not None:
        name = f"{made_for.__module__}.{made_for.__qualname__}.{owner.f_code.co_name} (generated)"
        named_type = True
    else:
        name = _where(frame, site.owner)
        named_type = False
    last = owner
    if caller is not None:
        name += f" via {_where(caller)}"
        last = caller
    if not named_type:
        name += _made_for(made_for, last.f_code)
    return name


def _made_for(made_for: type | None, code: CodeType) -> str:
    """`` for Type``, unless code is Type's own method (its name says it already)."""
    if made_for is None or made_for.__qualname__ == function_name(code).rpartition(".")[0]:
        return ""
    return f" for {made_for.__qualname__}"


def adopted_tkey(
    code: CodeType, line: int, module_globals: dict[str, object], made_for: type | None
) -> int | None:
    """The tkey of the class a lock made at ``line`` of ``code`` (a module's top level,
    or a method, for an object of type ``made_for``) has: for a lock made before
    ``install()`` and adopted later (see ``adopt``). The same name, so the same class,
    as the locks made there once installed."""
    name = f"{module_path(code, module_globals)}:{line} in {function_name(code)}"
    cid = LOCKDEP.register(name + _made_for(made_for, code))  # a reference kept for good
    return cid * CLASS_STRIDE if cid >= 0 else None


def _register(key: object, name: str, frame: FrameType) -> int | None:
    taken = _names.get(name)
    if taken is not None and taken != key:
        name = f"{name} (column {_column(frame)})"
    _names[name] = key
    cid = LOCKDEP.register(name)  # a reference kept while the site (and type) live
    return cid * CLASS_STRIDE if cid >= 0 else None


def _column(frame: FrameType) -> str:
    positions = getattr(frame.f_code, "co_positions", None)
    if positions is not None:  # 3.11+
        for i, position in enumerate(positions()):
            if i * 2 == frame.f_lasti and position[2] is not None:
                return str(position[2] + 1)
    return f"@{frame.f_lasti}"
