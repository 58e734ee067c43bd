"""Warm start: a new run whose networks begin at another run's last checkpoint (``train --init-from``).

What is taken from the parent ``checkpoint.pt``: the weights of every network of the family
(generators and discriminators, batch-norm statistics included) and, when both runs keep one, the
moving average of the served generator. What is not: the optimisers' moments, the epoch counter,
the learning-rate schedule and the random streams; the new run starts at epoch 1 with fresh Adam
optimisers, its own schedule and its own seed. A warm restart of the learning rate (Loshchilov and
Hutter 2017, SGDR) is one use; fine-tuning a shipped model's run on a site's own data is another.

The parent is recorded (path, SHA-256, epoch, its configuration and its ``timing.json``) in the
run's checkpoints and ``best.pt``; export copies it into the model card, so a warm-started model is
reproducible from its card: the parent's command, then this one.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch

from models.training.config import TrainConfig
from models.training.ema import WeightAverage
from models.training.families import Family
from models.training.torch_files import load_torch_file
from service.errors import OptionError


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_parent(path: Path, config: TrainConfig, device: torch.device) -> dict[str, Any]:
    """Read and check the parent checkpoint ``path`` for a run with ``config``; returns its state."""
    if not path.is_file():
        raise OptionError(
            f"--init-from: {path} is not a file: pass the checkpoint.pt of a finished or stopped run."
        )
    state = load_torch_file(
        path,
        what="--init-from",
        fix="pass the checkpoint.pt of a finished or stopped run (a shipped model cannot seed a run: "
        "train its card's command, or keep that run's folder).",
        error=OptionError,
        map_location=device,
    )
    if "family" not in state or "fingerprint" not in state:
        kind = "a best.pt (the served generator alone)" if "spec" in state else "not a training checkpoint"
        raise OptionError(
            f"--init-from: {path} is {kind}; a warm start needs every network of the family: "
            "pass the run's checkpoint.pt."
        )
    parent = state["fingerprint"]
    wanted = config.fingerprint()
    for key in ("task", "generator"):
        if parent.get(key) != wanted[key]:
            raise OptionError(
                f"--init-from: {path} was trained with {key} {parent.get(key)!r}, this run asks for "
                f"{wanted[key]!r}: pass the same --task and generator options (--channels, "
                "--context-slices, --head, --norm) as the parent run."
            )
    return dict(state)


def parent_record(path: Path, state: dict[str, Any]) -> dict[str, Any]:
    """What the card says of the parent: file, digest, epoch, options, time (and its own parent)."""
    timing_path = path.parent / "timing.json"
    record: dict[str, Any] = {
        "checkpoint": str(path),
        "sha256": file_sha256(path),
        "epoch": int(state["epoch"]),
        "config": {k: v for k, v in state["config"].items() if k != "out"},
        "timing": json.loads(timing_path.read_text()) if timing_path.is_file() else None,
    }
    if state.get("init") is not None:
        record["init"] = state["init"]
    return record


def apply_parent(state: dict[str, Any], family: Family, average: WeightAverage | None) -> None:
    """Load the parent's networks into ``family`` and its moving average into ``average`` (a parent
    without one: the average restarts at the loaded weights)."""
    for name, module in family.modules.items():
        module.load_state_dict(state["family"]["modules"][name])
    if average is not None:
        if "ema" in state:
            average.module.load_state_dict(state["ema"]["module"])
        else:
            average.module.load_state_dict(family.export_module().state_dict())


def check_resumed_parent(config: TrainConfig, recorded: dict[str, Any] | None) -> None:
    """On resume, ``--init-from`` (if given) must name the parent the run was started from."""
    if config.init_from is None:
        return
    if not config.init_from.is_file():
        raise OptionError(
            f"--resume --init-from {config.init_from}: no such file: drop --init-from when resuming "
            "(the run keeps its parent)."
        )
    if recorded is None or recorded["sha256"] != file_sha256(config.init_from):
        where = "no parent" if recorded is None else f"parent {recorded['checkpoint']}"
        raise OptionError(
            f"--resume --init-from {config.init_from}: the run in {config.out} was started from {where}: "
            "drop --init-from when resuming, or choose a new --out folder."
        )
