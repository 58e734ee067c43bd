"""Write a trained model into the Triton-layout repository with its card.

``<repository>/<name>/config.pbtxt``, ``<repository>/<name>/card.json`` and
``<repository>/<name>/<version>/model.onnx`` (plus ``<version>/card.json`` so each version keeps its
own card). The card is validated with the serving parser *before* anything is written, and the
version folder appears atomically.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from models.networks import GeneratorSpec, size_multiple
from models.training.config import TaskPreset
from service.atomic import atomic_directory, atomic_file
from service.errors import OutputError
from service.inference.card import SCHEMA, load_card, parse_card
from service.inference.repository import ModelRepository
from service.inference.triton_config import render_config

#: Size limit of a shipped model file (the repository is committed).
MAX_MODEL_BYTES = 30 * 1024 * 1024


def build_card(
    preset: TaskPreset,
    *,
    name: str,
    version: str,
    site: str,
    spec: GeneratorSpec,
    in_plane_spacing_mm: tuple[float, float],
    documentation: Mapping[str, Any],
    dose_reduction_factor: float | None = None,
) -> dict[str, Any]:
    """A card dict from the training preset (the serving contract) plus documentation fields."""
    card: dict[str, Any] = {
        "schema": SCHEMA,
        "name": name,
        "version": str(version),
        "task": preset.task.value,
        "site": site,
        "input": preset.input,
        "output": preset.output,
        "context_slices": spec.in_channels,
        "in_plane_spacing_mm": [float(in_plane_spacing_mm[0]), float(in_plane_spacing_mm[1])],
        "size_multiple": size_multiple(spec),
        "body_mask": preset.body_mask,
    }
    if dose_reduction_factor is not None:
        card["dose_reduction_factor"] = float(dose_reduction_factor)
    card.update(documentation)
    parse_card(json.loads(json.dumps(card)), source=f"card of {name}")
    return card


def write_entry(
    repository: str | Path,
    *,
    onnx_path: str | Path,
    card: Mapping[str, Any],
    max_batch_size: int = 8,
    overwrite: bool = False,
) -> Path:
    """Place ``onnx_path`` and ``card`` in the repository; returns the version folder.

    The written model is then loaded with the serving repository loader as a final check.
    """
    onnx_path = Path(onnx_path)
    size = onnx_path.stat().st_size
    if size > MAX_MODEL_BYTES:
        raise OutputError(
            f"{onnx_path} is {size / 2**20:.1f} MiB, over the 30 MiB limit: use fewer channels."
        )
    checked = parse_card(json.loads(json.dumps(card)), source="card")
    model_dir = Path(repository) / checked.name
    channels = config_channels({checked.context_slices} | _other_versions_slices(model_dir, checked.version))
    created = not model_dir.exists()
    model_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(card, indent=2, sort_keys=False) + "\n"
    previous = {
        n: (model_dir / n).read_bytes() for n in ("card.json", "config.pbtxt") if (model_dir / n).is_file()
    }
    version_dir = model_dir / checked.version
    existed = version_dir.exists()
    with atomic_directory(version_dir, overwrite=overwrite) as tmp:
        shutil.copyfile(onnx_path, tmp / "model.onnx")
        (tmp / "card.json").write_text(text, encoding="utf-8")
    try:
        with atomic_file(model_dir / "card.json", overwrite=True) as tmp_card:
            tmp_card.write_text(text, encoding="utf-8")
        with atomic_file(model_dir / "config.pbtxt", overwrite=True) as tmp_cfg:
            tmp_cfg.write_text(render_config(checked.name, channels, max_batch_size=max_batch_size))
        ModelRepository.load(repository)  # the serving loader must accept what was written
    except Exception:
        # Leave the repository as it was: a new version folder goes, the model's files come back.
        if created:
            shutil.rmtree(model_dir, ignore_errors=True)
        elif not existed:
            shutil.rmtree(version_dir, ignore_errors=True)
        for name, data in previous.items():
            with atomic_file(model_dir / name, overwrite=True) as tmp_restore:
                tmp_restore.write_bytes(data)
        raise
    return version_dir


def config_channels(context_slices: set[int]) -> int:
    """The input channel dimension of a model's ``config.pbtxt`` for its versions' context slices.

    Triton applies one ``config.pbtxt`` to every version of a model: when the versions differ in
    context slices its input channel dimension is -1 (any), and ONNX Runtime checks each version's
    own input shape; otherwise it is their common number of slices.
    """
    if not context_slices:
        raise OutputError("config_channels needs the context slices of at least one version, got none.")
    return next(iter(context_slices)) if len(context_slices) == 1 else -1


def _other_versions_slices(model_dir: Path, version: str) -> set[int]:
    """Context slices of the model's other version folders (from their ``card.json``)."""
    found: set[int] = set()
    if not model_dir.is_dir():
        return found
    for folder in model_dir.iterdir():
        card_path = folder / "card.json"
        if folder.name.isdigit() and folder.name != version and card_path.is_file():
            found.add(load_card(card_path).context_slices)  # a broken card is named, before any write
    return found
