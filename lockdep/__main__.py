"""``python -m lockdep``: run a program under lockdep, or merge saved lock graphs.

    python -m lockdep run [OPTIONS] script.py [args...]
    python -m lockdep run [OPTIONS] -m module [args...]
    python -m lockdep merge FILE|URL [FILE|URL...]

    OPTIONS: --graph FILE      save the learned graph to FILE at exit (merged)
             --suppress FILE   known violations not to fail on (see suppress.py);
                               also LOCKDEP_SUPPRESS=FILE[:FILE...]
             --backtrace       record full stacks with every acquisition

``run`` runs the program with ``lockdep.install()`` in effect, prints each
distinct violation's report to stderr as it happens, and exits with the
program's status, or 66 if the program exited 0 but an unsuppressed
violation was seen.
``merge`` prints every cycle of the union of saved graphs and of the graphs of
running services (the URL of a service's ``/lockdep``, say
``http://10.0.0.7:9464/lockdep``), with the sites of each edge, and exits 1 if
there is one (2 for unusable input).
"""

from __future__ import annotations

import io
import os
import sys
import threading
from types import ModuleType

from . import configure, install
from .violations import Once

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .suppress import Suppressions
    from .values import Violation

# What only an option, a violation or ``merge`` needs (persist, suppress, report,
# remote) is imported where it is used: the program under ``run`` does not pay
# for it at start-up.

EXIT_VIOLATION = 66
USAGE = __doc__.split("\n\n")[1] if __doc__ else ""


class _Printer:
    """on_violation for the runner: each distinct violation once, straight to stderr."""

    def __init__(self, suppressions: Suppressions | None) -> None:
        import _thread

        self._lock = _thread.allocate_lock()  # not tracked
        self._once = Once()
        self._suppressions = suppressions
        self.suppressed: dict[tuple[str, frozenset[str]], str] = {}
        self._stream = sys.__stderr__ or sys.stderr
        self.total = 0

    def __call__(self, violation: Violation) -> None:
        rule = self._suppressions.match(violation) if self._suppressions is not None else None
        with self._lock:
            if rule is not None:
                self.suppressed.setdefault(violation.key, rule)
                return
            self.total += 1
        if not self._once.first(violation):
            return
        self._stream.write(violation.report + "\n")
        self._stream.flush()

    @property
    def distinct(self) -> int:
        return len(self._once)


def _exit_status(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    sys.stderr.write(f"{code}\n")
    return 1


def _join_threads() -> None:
    # What the interpreter does at exit, done here so that violations in the
    # program's last threads count towards the exit status.
    main = threading.main_thread()
    for thread in threading.enumerate():
        if thread is not main and not thread.daemon:
            thread.join()


def run(argv: Sequence[str]) -> int:
    args = list(argv)
    graph = None
    backtrace = False
    suppress = [p for p in os.environ.get("LOCKDEP_SUPPRESS", "").split(os.pathsep) if p]
    while args and args[0].startswith("--"):
        option = args.pop(0)
        name, _, value = option.partition("=")
        if name in ("--graph", "--suppress") and not value:
            if not args:
                return _usage(f"{name} needs a file")
            value = args.pop(0)
        if name == "--graph":
            graph = value
        elif name == "--suppress":
            suppress.append(value)
        elif option == "--backtrace":
            backtrace = True
        else:
            return _usage(f"unknown option {option!r}")
    suppressions = None
    if suppress:
        from .suppress import SuppressionError, Suppressions

        try:
            suppressions = Suppressions.load(suppress)
        except SuppressionError as exc:
            return _usage(str(exc))
    if not args:
        return _usage("run needs a script or -m module")
    module = None
    if args[0] == "-m":
        if len(args) < 2:
            return _usage("-m needs a module name")
        module, program_args = args[1], args[2:]
        sys.argv = [module, *program_args]
    else:
        script, program_args = args[0], args[1:]
        if not os.path.exists(script):
            return _usage(f"no such script: {script}")
        sys.argv = [script, *program_args]
        sys.path[0] = os.path.dirname(os.path.abspath(script))

    printer = _Printer(suppressions)
    configure(on_violation=printer, backtrace=backtrace)
    install()
    if graph:
        from . import persist

        persist.save_at_exit(graph)
    try:
        if module is not None:
            import runpy

            runpy.run_module(module, run_name="__main__", alter_sys=True)
        else:
            _run_path(sys.argv[0])
        status = 0
    except SystemExit as exc:
        status = _exit_status(exc.code)
    except BaseException as exc:
        _print_exception(exc)
        status = 1
    _join_threads()
    for key, rule in printer.suppressed.items():
        kind, classes = key
        sys.stderr.write(
            f"lockdep: suppressed by {rule}: {kind} violation of {', '.join(sorted(classes))}\n"
        )
    if printer.total:
        sys.stderr.write(
            f"lockdep: {printer.distinct} distinct violation(s), {printer.total} in all\n"
        )
        if status == 0:
            status = EXIT_VIOLATION
    return status


def _run_path(path: str) -> None:
    """runpy.run_path(path, run_name="__main__"), without importing runpy's pkgutil
    (and through it typing, which the program may never need) for a source file:
    the code runs in a new ``__main__`` module set up as runpy sets it up
    (``__file__`` as given; ``__spec__``, ``__loader__`` and ``__cached__`` None;
    ``__package__`` empty), in sys.modules while it runs. A directory, a zip
    file, or a file that is not Python source (compiled code, say) is left to
    runpy, and so is a source file that does not compile (runpy raises the
    same error)."""
    for hook in sys.path_hooks:  # what pkgutil.get_importer tries
        try:
            hook(path)
        except ImportError:
            continue
        return _runpy_run_path(path)
    with io.open_code(os.path.abspath(path)) as f:
        source = f.read()
    try:
        # dont_inherit: not this module's ``from __future__`` imports.
        code = compile(source, path, "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        code = None  # runpy's error, raised outside this handler
    if code is None:
        return _runpy_run_path(path)
    main = ModuleType("__main__")
    main.__dict__.update(
        __name__="__main__",
        __file__=path,
        __cached__=None,
        __doc__=None,
        __loader__=None,
        __package__="",
        __spec__=None,
    )
    saved = sys.modules.get("__main__")
    sys.modules["__main__"] = main
    try:
        exec(code, main.__dict__)
    finally:
        if saved is not None:
            sys.modules["__main__"] = saved
        else:
            del sys.modules["__main__"]


def _runpy_run_path(path: str) -> None:
    import runpy

    runpy.run_path(path, run_name="__main__")


def _print_exception(exc: BaseException) -> None:
    """The program's uncaught exception as the interpreter prints it: its traceback
    from the program's first frame (the runner's and runpy's left out)."""
    import traceback

    tb = exc.__traceback__
    while tb is not None and _is_runner_code(tb.tb_frame.f_code.co_filename):
        tb = tb.tb_next
    traceback.print_exception(type(exc), exc, tb)


def _is_runner_code(filename: str) -> bool:
    runpy = sys.modules.get("runpy")
    return filename == __file__ or (
        runpy is not None and filename in (runpy.__file__, "<frozen runpy>")
    )


def merge(paths: Sequence[str]) -> int:
    # Imported here: urllib and http.client would slow down every program's start.
    from . import persist, remote, report

    if not paths:
        return _usage("merge needs at least one graph file or /lockdep URL")
    try:
        graphs = [remote.load_url(p) if remote.is_url(p) else persist.load(p) for p in paths]
    except persist.GraphFileError as exc:
        sys.stderr.write(f"lockdep merge: {exc}\n")
        return 2
    union = persist.merge(graphs)
    cycles, truncated = persist.find_cycles(union)
    summary = (
        f"{len(union['classes'])} classes, {len(union['edges'])} edges from {len(paths)} graph(s)"
    )
    if not cycles:
        print(f"lockdep merge: no cycle ({summary})")
        return 0
    print(report.format_cycles(cycles, truncated))
    print(f"lockdep merge: {len(cycles)} cycle(s) ({summary})")
    return 1


def _usage(problem: str) -> int:
    sys.stderr.write(f"lockdep: {problem}\nusage:\n{USAGE}\n")
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command == "run":
        return run(rest)
    if command == "merge":
        return merge(rest)
    return _usage(f"unknown command {command!r}")


if __name__ == "__main__":
    sys.exit(main())
