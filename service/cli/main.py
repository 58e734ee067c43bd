"""``radtranslate`` entry point: builds subcommands and maps errors to exit codes.

Subcommands are modules with ``register(subparsers) -> None``. Runtime commands live in
:mod:`service.cli`; commands of the training side (``simulate``, ``train``, ``export``) are
found through the ``radtranslate.commands`` entry-point group, so :mod:`service` never
imports :mod:`models` (or torch).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points

from service import __version__
from service.errors import InputError, NotFoundError, NumericError, OutputError, RadTranslateError

#: Runtime subcommand modules under service.cli (missing ones are skipped).
RUNTIME_COMMANDS = ("info", "convert", "translate", "serve", "validate", "example", "models")

EXIT_OK = 0
EXIT_CHECK_FAILED = 1  # a QA threshold (--fail-under) was not met
EXIT_INPUT = 2
EXIT_OUTPUT = 3
EXIT_NOT_FOUND = 4
EXIT_INTERNAL = 70

log = logging.getLogger("radtranslate.cli")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="radtranslate",
        description="MR to synthetic CT, CBCT to CT and low-dose to full-dose PET translation.",
    )
    parser.add_argument("--version", action="version", version=f"radtranslate {__version__}")
    parser.add_argument("--log-level", default="WARNING", help="logging level (default WARNING)")
    parser.add_argument("--log-json", action="store_true", help="log one JSON object per line")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in RUNTIME_COMMANDS:
        try:
            module = importlib.import_module(f"service.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"service.cli.{name}":
                continue
            raise
        module.register(sub)
    for ep in entry_points(group="radtranslate.commands"):
        try:
            register = ep.load()
        except ImportError as exc:  # training extra not installed
            missing = exc.name or "a dependency"
            stub = sub.add_parser(ep.name, help=f"(unavailable: {missing} not installed)")
            stub.set_defaults(func=_unavailable(ep.name, missing))
            continue
        register(sub)
    return parser


def _unavailable(name: str, missing: str):  # type: ignore[no-untyped-def]
    def run(args: argparse.Namespace) -> int:
        print(
            f"error: '{name}' needs {missing}, which is not installed: "
            "install the training extra (pip install 'radtranslate[train]').",
            file=sys.stderr,
        )
        return EXIT_INPUT

    return run


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from service.logs import configure

    configure(args.log_level, json_format=args.log_json)
    try:
        code = args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (InputError, NotFoundError, OutputError, NumericError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        if isinstance(exc, NotFoundError):
            return EXIT_NOT_FOUND
        if isinstance(exc, OutputError):
            return EXIT_OUTPUT
        if isinstance(exc, NumericError):
            return EXIT_INTERNAL
        return EXIT_INPUT
    except RadTranslateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INTERNAL
    return int(code or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
