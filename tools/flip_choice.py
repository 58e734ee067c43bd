"""Choose a model's test-time mirror set on its training run's validation subjects.

python tools/flip_choice.py --model NAME --version N --data TRAIN/ [--seed 1] [--val-fraction 0.1]
    [--modes none,x,xz,xy,d4,xyz]

Scores a single-pass model (one exported with ``--flips none``) on the validation subjects of the run
it came from (``TRAIN/`` is the run's training folder; ``--seed`` and ``--val-fraction`` the run's, which
``models.training.dataset.split_indices`` turns into the same subjects ``train`` validated on), once
per candidate mirror set: each mirrored input volume goes through the serving engine, each output is
mirrored back, and the outputs are averaged. The averaged volume is what a model exported with
``radtranslate export --flips`` serves, up to where the engine pads a slice (the test checks this).
It prints the card's metrics per mode, so the choice is made before any held-out subject is scored
(``docs/training.md``, "Test-time flip averaging").

Modes (``(z, y, x)`` volume axes): ``none``; ``x`` (width mirror); ``xy`` (width, height and both: what
``--flips xy`` serves); ``xz`` (x with the slice order reversed too); ``xyz`` (xy with it); ``d4`` (the
8 in-plane symmetries: xy and the transposes; square slices only).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from export.evaluate import evaluate_folder
from export.flip_average import Flips
from export.score import preset_for
from models.simulation.loader import iter_dataset
from models.training.dataset import DATASET_TASK, split_indices
from service.errors import OptionError, RadTranslateError
from service.inference.engine import Engine, TranslationResult
from service.inference.repository import default_repository_path
from service.volume import Volume

Transform = Callable[[np.ndarray], np.ndarray]


def _flip(axes: tuple[int, ...]) -> tuple[Transform, Transform]:
    def mirror(a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.flip(a, axes)) if axes else a

    return mirror, mirror


def _transpose(axes: tuple[int, ...]) -> tuple[Transform, Transform]:
    mirror, _ = _flip(axes)
    return (lambda a: np.ascontiguousarray(np.swapaxes(mirror(a), 1, 2)),
            lambda a: mirror(np.ascontiguousarray(np.swapaxes(a, 1, 2))))  # fmt: skip


def _volume_axes(flips: Flips) -> list[tuple[int, ...]]:
    """``flips``' mirrors (on the model input ``(N, C, H, W)``) as ``(z, y, x)`` volume axes."""
    return [tuple(dim - 1 for dim in dims) for dims in flips.dims]  # H -> y (1), W -> x (2)


_X, _XY = _volume_axes(Flips.X), _volume_axes(Flips.XY)
MODES: dict[str, list[tuple[Transform, Transform]]] = {
    "none": [_flip(a) for a in _volume_axes(Flips.NONE)],
    "x": [_flip(a) for a in _X],  # what export --flips x serves
    "xz": [_flip(a) for a in _X] + [_flip((0, *a)) for a in _X],
    "xy": [_flip(a) for a in _XY],  # what export --flips xy serves
    "xyz": [_flip(a) for a in _XY] + [_flip((0, *a)) for a in _XY],
    "d4": [_flip(a) for a in _XY] + [_transpose(a) for a in _XY],
}


class MirrorAveragingEngine(Engine):
    """An :class:`Engine` whose ``translate`` averages the model over mirrored copies of the volume."""

    def __init__(self, repository: str | Path, transforms: Sequence[tuple[Transform, Transform]]) -> None:
        super().__init__(repository)
        self.transforms = list(transforms)

    def translate(self, volume: Volume, **kwargs: Any) -> TranslationResult:
        outputs: list[np.ndarray] = []
        result: TranslationResult | None = None
        for forward, back in self.transforms:
            mirrored = forward(volume.array)
            if mirrored.shape != volume.array.shape:
                raise OptionError(
                    "mode d4 transposes the slices, which needs square slices, got "
                    f"{volume.array.shape[1:]}: "
                    "pick another mode."
                )
            result = super().translate(volume.with_array(mirrored), **kwargs)
            outputs.append(back(np.asarray(result.volume.array, dtype=np.float64)))
        assert result is not None  # every mode holds the identity
        mean = np.mean(outputs, axis=0).astype(np.asarray(result.volume.array).dtype)
        return dataclasses.replace(result, volume=result.volume.with_array(mean))


def validation_folder(data: Path, task: str, seed: int, val_fraction: float, into: Path) -> list[str]:
    """Link the run's validation subjects of ``data`` into ``into``; returns their names."""
    names = [subject.name for subject in iter_dataset(data, task)]
    _, val_idx = split_indices(len(names), seed, val_fraction)
    if not val_idx:
        raise OptionError(
            f"--val-fraction {val_fraction} leaves no validation subject among {len(names)}: "
            "pass the run's --val-fraction (train's default 0.1)."
        )
    chosen = [names[i] for i in val_idx]
    for name in chosen:
        os.symlink((data / name).resolve(), into / name)
    return chosen


KEYS = ("mae_hu", "mae_band_hu_bone", "mae_band_hu_soft_tissue", "psnr_gain_db",
        "organ_suvmean_bias_mean_abs_percent", "lesion_suvmax_bias_mean_abs_percent")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--version", default=None)
    parser.add_argument(
        "--data", required=True, type=Path, help="the run's training folder (SynthRAD layout)"
    )
    parser.add_argument("--seed", type=int, default=1, help="the run's --seed")
    parser.add_argument("--val-fraction", type=float, default=0.1, help="the run's --val-fraction")
    parser.add_argument(
        "--modes", default="none,x,xz,xy,d4,xyz", help="comma-separated, from " + ",".join(MODES)
    )
    parser.add_argument("--repository", type=Path, default=default_repository_path())
    args = parser.parse_args()
    if args.seed < 0:
        parser.error(f"--seed must be the run's seed, a non-negative integer, got {args.seed}: pass it.")
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = [m for m in modes if m not in MODES]
    if unknown or not modes:
        parser.error(f"--modes must list some of {', '.join(MODES)}, got {args.modes!r}: pick from those.")
    try:
        return run(args, modes)
    except RadTranslateError as exc:  # a missing folder or model, a damaged subject: named, no traceback
        parser.error(str(exc))


def run(args: argparse.Namespace, modes: list[str]) -> int:
    card = Engine(args.repository).get_model(args.model, args.version)
    flips = card.documentation.get("architecture", {}).get("flips", {}).get("mode", "none")
    if flips != "none":
        raise OptionError(
            f"{card.name} v{card.version} already averages mirrors in its graph (flips {flips!r}): "
            "pass the single-pass version it was exported from."
        )
    preset = preset_for(card)
    with tempfile.TemporaryDirectory() as tmp:
        names = validation_folder(
            args.data, DATASET_TASK[preset.task], args.seed, args.val_fraction, Path(tmp)
        )
        print(f"{card.name} v{card.version} on {len(names)} validation subjects: {', '.join(names)}")
        for mode in modes:
            engine = MirrorAveragingEngine(args.repository, MODES[mode])
            mean = evaluate_folder(engine, card.name, tmp, preset, version=card.version).mean()
            figures = {key: round(mean[key], 3) for key in KEYS if key in mean}
            print(json.dumps({"mode": mode, "passes": len(MODES[mode]), **figures}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
