"""``radtranslate models list|show NAME [--version V] [--json] [--models DIR]``: the model repository."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from service.inference.card import ModelCard


def register(subparsers: Any) -> None:
    """Add the ``models`` subcommand."""
    parser = subparsers.add_parser(
        "models",
        help="list the models of the repository or show a model card",
        description="List the models of the model repository, or print one model's card.",
    )
    parser.add_argument("action", choices=("list", "show"), help="list all models, or show one card")
    parser.add_argument("name", nargs="?", help="model name (for 'show')")
    parser.add_argument("--version", help="model version (default: the highest)")
    parser.add_argument("--models", type=Path, help="model repository folder")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(func=run)


def summary(card: ModelCard) -> dict[str, Any]:
    """The fields of a card shown by ``models list``."""
    return {
        "name": card.name,
        "version": card.version,
        "task": card.task.value,
        "site": card.site.value,
        "input": f"{card.input.modality.value} ({card.input.unit.value})",
        "output": f"{card.output.modality.value} ({card.output.unit.value})",
        "context_slices": card.context_slices,
        "in_plane_spacing_mm": list(card.in_plane_spacing_mm),
    }


def _table(rows: list[dict[str, Any]]) -> str:
    columns = ("name", "version", "task", "site", "input", "output")
    cells = [columns] + [tuple(str(r[c]) for c in columns) for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = ("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells)
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Print the repository's models, or one card."""
    from service.errors import OptionError
    from service.inference.repository import ModelRepository, default_repository_path

    repository = ModelRepository.load(args.models or default_repository_path())
    if args.action == "list":
        if args.name:
            raise OptionError(f"'models list' takes no NAME, got {args.name!r}: use 'models show NAME'.")
        rows = [summary(e.card) for e in repository.entries()]
        print(json.dumps(rows, indent=2) if args.json else _table(rows))
        return 0
    if not args.name:
        raise OptionError("'models show' needs a NAME: see 'radtranslate models list'.")
    card = repository.get(args.name, args.version).card
    if args.json:
        print(json.dumps(card.to_dict(), indent=2))
    else:
        for key, value in card.to_dict().items():
            text = value if isinstance(value, str) else json.dumps(value)
            print(f"{key}: {text}")
    return 0
