"""``python -m threadpool``: the service's command line (also installed as ``threadpool``).

    python -m threadpool serve [--config config.yaml]   run the service
    python -m threadpool check [--config config.yaml]   check a configuration
    python -m threadpool example-config                 print the commented example

``serve`` exits 0 after a clean shutdown (SIGTERM or SIGINT), 1 when it cannot
run (the port is taken), 2 for an invalid configuration. ``check`` prints
every problem of the file and exits 2, or says it is valid and exits 0; both
warn when others than its owner can write the file or its directory.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

CODE_WARNING = (
    "The configuration is code: the modules its handler, finish and factory entries name "
    "are imported, and the factories called, by check as by serve. Give the file the "
    "protection of the code itself: writable only by whoever may change what the service "
    "runs, never by the user the service runs as."
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="threadpool", description="Ceph-style thread pools as a service.", epilog=CODE_WARNING
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("serve", "run the service"),
        ("check", "check a configuration file (this imports and runs its handlers' modules)"),
    ):
        command = commands.add_parser(name, help=text, description=text, epilog=CODE_WARNING)
        command.add_argument(
            "--config", default="config.yaml", help="the configuration file (default: config.yaml)"
        )
    text = "print the shipped config.yaml: every key, commented, from the schema"
    commands.add_parser("example-config", help=text, description=text)
    args = parser.parse_args(argv)
    # The service needs prometheus_client and yaml; the pool core does not.
    from .service.config import ConfigError, load, unsafe_permissions
    from .service.service import EXIT_CONFIG, serve

    if args.command == "serve":
        return serve(args.config)
    if args.command == "example-config":
        from .service.example import example_config

        sys.stdout.write(example_config())
        return 0
    for warning in unsafe_permissions(args.config):
        print(f"warning: {warning}", file=sys.stderr)
    try:
        config = load(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_CONFIG
    for warning in config.warnings:  # retired keys: ignored, named
        print(f"warning: {warning}", file=sys.stderr)
    queues = sum(len(p.queues) for p in config.pools)
    print(f"{args.config}: valid (pools: {len(config.pools)}, queues: {queues})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
