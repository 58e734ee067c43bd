"""``radtranslate score``: a shipped model's card metrics on any paired SynthRAD-layout folder.

What a physicist runs to commission a model on their own paired data, or to check a card's held-out
figures: every subject of ``DATA/`` goes through the serving engine (as ``translate`` would run it) and
is scored exactly as ``radtranslate export`` scores the card's held-out set (:mod:`export.evaluate`).
Prints JSON: the per-subject figures, their means, the product target and whether the means meet it,
and the card's own held-out means beside them.

Example::

    radtranslate score --model cbct_to_ct_brain --version 2 --data TEST/
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from export.evaluate import TARGETS, Evaluation, evaluate_folder, meets_target, same_subjects
from models.simulation.loader import dataset_record
from models.training.config import TaskPreset, task_preset
from service.errors import InputError
from service.inference.card import ModelCard, Task
from service.inference.engine import Engine
from service.inference.repository import default_repository_path

__all__ = ["preset_for", "register", "score"]


def preset_for(card: ModelCard) -> TaskPreset:
    """The training preset whose dataset images feed ``card``'s model (PET: its dose-reduction factor)."""
    if card.task is Task.PET_DENOISE and card.dose_reduction_factor is None:
        raise InputError(
            f"model {card.name!r} version {card.version} states no dose_reduction_factor: its card is "
            "incomplete; re-export it with radtranslate export."
        )
    drf = card.dose_reduction_factor
    if drf is not None and drf != round(drf):
        raise InputError(
            f"model {card.name!r} version {card.version} states dose_reduction_factor {drf}, but dataset "
            "folders name low-dose images by an integer factor (pet_low_drfN): score it with your own "
            "evaluation, or simulate and train at an integer factor."
        )
    return task_preset(card.task, None if drf is None else round(drf))


def same_subjects_as(documentation: Mapping[str, Any], data: str | Path) -> list[str]:
    """Which of the card's own sets (``"training set"``, ``"held-out set"``, ``"confirmation set"``) the
    folder ``data`` repeats: simulated with the same seed, task and site (from its ``dataset.json``).

    An empty list when the folder has no ``dataset.json`` (a site's own data) or repeats none of them.
    """
    mine = dataset_record(data)
    metrics = documentation.get("metrics", {})
    sets = {
        "training set": documentation.get("training", {}).get("dataset"),
        "held-out set": metrics.get("test_dataset"),
        "confirmation set": metrics.get("confirmation", {}).get("test_dataset"),
    }
    return [name for name, other in sets.items() if isinstance(other, dict) and same_subjects(mine, other)]


def score(engine: Engine, model: str, data: str | Path, version: str | None = None) -> dict[str, Any]:
    """Score ``model`` (``version``: None = the repository's default) on every subject under ``data``.

    Raises
    ------
    NotFoundError
        No such model or version in the engine's repository.
    InputError
        ``data`` is missing, empty, or a subject lacks the image the model needs (named in the message).
    """
    card = engine.get_model(model, version)
    preset = preset_for(card)
    evaluation: Evaluation = evaluate_folder(engine, card.name, data, preset, version=card.version)
    if not evaluation.subjects:
        raise InputError(f"dataset folder {str(data)!r} holds no subject: pass a folder of subject folders.")
    mean = evaluation.mean()
    held_out = card.documentation.get("metrics", {}).get("held_out", {})
    return {
        "model": card.name,
        "version": card.version,
        "task": card.task.value,
        "data": str(data),
        **evaluation.to_dict(),
        "target": TARGETS[card.task.value],
        "target_met": meets_target(card.task.value, mean),
        "card_held_out_mean": held_out.get("mean"),
        "same_subjects_as": same_subjects_as(card.documentation, data),
    }


def register(subparsers: Any) -> None:
    """Add the ``score`` subcommand to the radtranslate CLI."""
    p = subparsers.add_parser(
        "score",
        help="score a model with its card's metrics on a paired dataset folder (commissioning)",
        description=(
            "Run a model from the repository on every subject of a paired SynthRAD-layout folder (input "
            "and reference images, body mask; labels for PET organ and lesion biases) and print the card's "
            "metrics as JSON, with the product target and the card's own held-out means."
        ),
    )
    p.add_argument("--model", required=True, help="model name, e.g. mr_to_ct_brain")
    p.add_argument("--version", default=None, help="model version (default: the repository's default)")
    p.add_argument("--data", required=True, type=Path, help="paired dataset folder (SynthRAD layout)")
    p.add_argument(
        "--repository", type=Path, default=None, help="model repository (default: the shipped one)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``radtranslate score``; returns the exit code (0 on success)."""
    engine = Engine(args.repository if args.repository is not None else default_repository_path())
    result = score(engine, args.model, args.data, version=args.version)
    if "training set" in result["same_subjects_as"]:
        print(
            f"note: {args.data} holds the subjects this model was trained on (same seed, task and site): "
            "its figures are not a test; simulate another seed or use your own data.",
            file=sys.stderr,
        )
    print(json.dumps(result, indent=1))
    return 0
