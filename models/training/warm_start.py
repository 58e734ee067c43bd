"""Warm start: a new run whose networks begin at another run's networks (``train --init-from``).

The parent is one of a run's two files:

- ``checkpoint.pt`` (its last epoch): the weights of every network of the family (generators and
  discriminators, batch-norm statistics included) and, when both runs keep one, the moving average
  of the served generator.
- ``best.pt`` (its best epoch): the served generator alone, as that run served it (its weight
  average when it kept one). The served generator and, if this run keeps one, its average start
  there; every other network (discriminators; the CycleGAN's CT→CBCT generator) starts fresh from
  this run's seed, as in a run without a parent. This is the file a run brings back from a machine
  that cannot return the larger checkpoint, and the one a site keeps to fine-tune on its own data.

What is never taken: the optimisers' moments, the epoch counter, the learning-rate schedule and the
random streams; the new run starts at epoch 1 with fresh Adam optimisers, its own schedule and its
own seed. A warm restart of the learning rate (Loshchilov and Hutter 2017, SGDR) is one use;
fine-tuning a run on a site's own data is another.

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


#: ``parent_record``'s ``networks``: what the run took from each kind of parent file.
ALL_NETWORKS = "all"
SERVED_GENERATOR = "served generator"


def is_generator_only(state: dict[str, Any]) -> bool:
    """True for a ``best.pt`` (the served generator alone), False for a ``checkpoint.pt``."""
    return isinstance(state.get("family"), str) and "state" in state and "fingerprint" not in state


def load_parent(path: Path, config: TrainConfig, device: torch.device) -> dict[str, Any]:
    """Read and check the parent ``path`` (a run's ``checkpoint.pt`` or ``best.pt``) for a run with
    ``config``; returns its state."""
    fix = (
        "pass the checkpoint.pt or best.pt of a finished or stopped run (a shipped model.onnx cannot "
        "seed a run: train its card's command, or keep that run's folder)."
    )
    if not path.is_file():
        raise OptionError(f"--init-from: {path} is not a file: {fix}")
    state = load_torch_file(path, what="--init-from", fix=fix, error=OptionError, map_location=device)
    if is_generator_only(state):
        parent = {
            "task": (state.get("config") or {}).get("task"),
            "generator": state.get("spec"),
            "family": state["family"],
        }
        wanted = {**config.fingerprint(), "family": config.preset.family}
        keys: tuple[str, ...] = ("task", "family", "generator")
    elif isinstance(state.get("family"), dict) and "fingerprint" in state:
        parent, wanted, keys = state["fingerprint"], config.fingerprint(), ("task", "generator")
    else:
        raise OptionError(f"--init-from: {path} is not a training checkpoint: {fix}")
    for key in keys:
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
        "networks": SERVED_GENERATOR if is_generator_only(state) else ALL_NETWORKS,
        "sha256": file_sha256(path),
        "epoch": int(state["epoch"]),
        "config": {k: v for k, v in state["config"].items() if k != "out"},
        "timing": json.loads(timing_path.read_text()) if timing_path.is_file() else None,
    }
    if state.get("init") is not None:
        record["init"] = state["init"]
    return record


def _load(module: torch.nn.Module, weights: Any, path: Path, what: str) -> None:
    """``module.load_state_dict(weights)``, a mismatch refused as an ``OptionError`` naming ``path``."""
    try:
        module.load_state_dict(weights)
    except (RuntimeError, KeyError, TypeError, AttributeError) as exc:
        detail = " ".join(str(exc).split()) or type(exc).__name__
        detail = detail if len(detail) <= 240 else detail[:237] + "..."
        raise OptionError(
            f"--init-from: {path}: its {what} does not load into this run's network ({detail}): pass a "
            "file written by this version of radtranslate train with the same --task and generator "
            "options, or train the parent again."
        ) from exc


def apply_parent(state: dict[str, Any], family: Family, average: WeightAverage | None, path: Path) -> None:
    """Load the parent's networks (read from ``path``) into ``family`` and its moving average into
    ``average`` (a parent without one: the average restarts at the loaded weights).

    A ``best.pt`` parent loads the served generator (and the average) only; the family's other
    networks keep the fresh weights they were built with. Weights that do not fit the networks (a
    file of another code version, or edited) raise ``OptionError`` before the run writes anything.
    """
    if is_generator_only(state):
        _load(family.export_module(), state["state"], path, "served generator")
        if average is not None:
            average.module.load_state_dict(family.export_module().state_dict())
        return
    modules = state["family"].get("modules", {})
    for name, module in family.modules.items():
        if name not in modules:
            raise OptionError(
                f"--init-from: {path} has no network {name!r} (it holds {', '.join(sorted(modules))}): "
                "pass the checkpoint.pt of a run of the same task."
            )
        _load(module, modules[name], path, f"network {name!r}")
    if average is not None:
        if "ema" in state:
            _load(average.module, state["ema"]["module"], path, "weight average")
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
