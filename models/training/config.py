"""Training configuration and the per-task presets that become the model card's contract.

A preset fixes what training and serving must agree on: modalities and units, normalisation,
body mask, 2.5D context, generator, family and loss weights. The card written at export is
built from the same preset, so serving applies exactly what training applied.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from models.networks import GeneratorSpec, size_multiple
from models.training.families import LossWeights
from service.errors import OptionError
from service.inference.card import Task


@dataclass(frozen=True)
class TaskPreset:
    """What a task's model reads and writes (card fields) and how it is trained."""

    task: Task
    family: str
    input: dict[str, Any]
    output: dict[str, Any]
    body_mask: dict[str, Any]
    generator: GeneratorSpec
    weights: LossWeights
    target_context: int = 1  # slices of target per sample (CycleGAN maps stacks to stacks)
    dataset_input: str = "mr"  # file stem of the input image in a subject folder
    dataset_target: str = "ct"


CT_RANGE_HU = (-1024.0, 3071.0)

PRESETS: dict[Task, TaskPreset] = {
    Task.MR_TO_CT: TaskPreset(
        task=Task.MR_TO_CT,
        family="pix2pix",
        input={
            "modality": "MR",
            "unit": "MR_AU",
            "normalisation": {
                "kind": "percentile",
                "low_percentile": 0.5,
                "high_percentile": 99.5,
                "upper_bound": 2.0,
            },
        },
        output={
            "modality": "CT",
            "unit": "HU",
            "normalisation": {"kind": "clip_linear", "low": CT_RANGE_HU[0], "high": CT_RANGE_HU[1]},
            "background": -1000.0,
            "clip": list(CT_RANGE_HU),
        },
        body_mask={"kind": "relative_threshold", "reference_percentile": 99.0, "fraction": 0.08},
        generator=GeneratorSpec(kind="unet", in_channels=3, channels=(32, 64, 128, 256), num_res_units=1),
        weights=LossWeights(adversarial=1.0, l1=100.0),
        dataset_input="mr",
    ),
    Task.CBCT_TO_CT: TaskPreset(
        task=Task.CBCT_TO_CT,
        family="cyclegan",
        input={
            "modality": "CT",
            "unit": "HU",
            "normalisation": {"kind": "clip_linear", "low": CT_RANGE_HU[0], "high": CT_RANGE_HU[1]},
        },
        output={
            "modality": "CT",
            "unit": "HU",
            "normalisation": {"kind": "clip_linear", "low": CT_RANGE_HU[0], "high": CT_RANGE_HU[1]},
            "background": -1000.0,
            "clip": list(CT_RANGE_HU),
        },
        body_mask={"kind": "hu_threshold", "threshold_hu": -500.0},
        generator=GeneratorSpec(
            kind="unet",
            in_channels=3,
            channels=(32, 64, 128, 256),
            num_res_units=1,
            head="residual",
            norm="batch",
        ),
        weights=LossWeights(adversarial=1.0, cycle=10.0, identity=5.0, paired_l1=0.0),
        target_context=3,
        dataset_input="cbct",
    ),
    Task.PET_DENOISE: TaskPreset(
        task=Task.PET_DENOISE,
        family="daegan",
        input={"modality": "PT", "unit": "SUVbw", "normalisation": {"kind": "suv_log", "scale": 1.0}},
        output={
            "modality": "PT",
            "unit": "SUVbw",
            "normalisation": {"kind": "suv_log", "scale": 1.0},
            "background": 0.0,
            "clip": [0.0, 100.0],
        },
        body_mask={"kind": "smoothed_threshold", "sigma_mm": 4.0, "threshold": 0.05},
        generator=GeneratorSpec(
            kind="attention_unet", in_channels=3, channels=(32, 64, 128, 256), head="residual", norm="batch"
        ),
        weights=LossWeights(adversarial=0.5, l1=100.0, gradient=50.0, frequency=10.0),
        dataset_input="pet_low_drf10",
        dataset_target="pet_full",
    ),
}


def parse_loss_weights(weights: Mapping[str, Any]) -> dict[str, float]:
    """Check loss-weight overrides: names of :class:`LossWeights` fields, finite values ≥ 0."""
    names = [f.name for f in fields(LossWeights)]
    out: dict[str, float] = {}
    for name, value in weights.items():
        if name not in names:
            raise OptionError(
                f"loss weight {name!r} is not a loss of the training families: use one of {', '.join(names)}."
            )
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = float("nan")
        if not (math.isfinite(number) and number >= 0):
            raise OptionError(
                f"loss weight {name} must be a finite number ≥ 0, got {value!r}: pass e.g. {name}=1."
            )
        out[name] = number
    return out


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on (stored in the checkpoint; resume checks it)."""

    task: Task
    data: Path
    out: Path
    epochs: int = 20
    steps_per_epoch: int = 100
    batch_size: int = 8
    crop_px: int = 128
    lr: float = 2e-4
    seed: int = 0
    val_fraction: float = 0.1
    threads: int = 0  # 0: torch default
    device: str = "cpu"  # "cpu", "cuda" or "auto" (CUDA when available)
    drf: int = 10  # PET only: the dose-reduction factor whose low-dose images are the input
    generator: GeneratorSpec | None = None  # None: the preset's
    paired_l1: float | None = None  # CycleGAN: paired L1 weight (None: the preset's)
    decay_epochs: int = 0  # last epochs over which the learning rate falls linearly towards 0
    loss_weights: dict[str, float] | None = None  # overrides of the preset's LossWeights, by field name
    ema_decay: float = 0.0  # > 0: validate and export an EMA of the generator's weights (training/ema.py)
    init_from: Path | None = None  # a parent run's checkpoint.pt or best.pt to start from
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "task", Task.parse(self.task))
        object.__setattr__(self, "data", Path(self.data))
        object.__setattr__(self, "out", Path(self.out))
        if self.init_from is not None:
            object.__setattr__(self, "init_from", Path(self.init_from))
        for name in ("epochs", "steps_per_epoch", "batch_size", "crop_px"):
            if int(getattr(self, name)) < 1:
                raise OptionError(f"{name} must be ≥ 1, got {getattr(self, name)}.")
        if not 0 <= int(self.decay_epochs) <= int(self.epochs):
            raise OptionError(
                f"decay_epochs must be in [0, epochs = {self.epochs}], got {self.decay_epochs}: "
                "pass fewer decay epochs or more epochs."
            )
        if self.loss_weights is not None:
            object.__setattr__(self, "loss_weights", parse_loss_weights(self.loss_weights))
            suv_log = PRESETS[self.task].output["normalisation"]["kind"] == "suv_log"
            for name in ("suv_l1", "lesion_l1"):
                if self.loss_weights.get(name, 0.0) > 0 and not suv_log:
                    raise OptionError(
                        f"loss weight {name} applies to models trained in SUV (pet-denoise), "
                        f"not to {self.task.value}: drop --loss-weight {name}."
                    )
        if not 0.0 <= float(self.ema_decay) < 1.0:
            raise OptionError(
                f"ema_decay must be in [0, 1), got {self.ema_decay}: pass e.g. 0.998, or 0 for no average."
            )
        if self.device not in ("cpu", "cuda", "auto"):
            raise OptionError(
                f"device must be 'cpu', 'cuda' or 'auto', got {self.device!r}: pass one of these."
            )
        if not 0.0 <= self.val_fraction < 1.0:
            raise OptionError(f"val_fraction must be in [0, 1), got {self.val_fraction}.")
        multiple = size_multiple(self.generator_spec)
        if self.crop_px % multiple:
            raise OptionError(
                f"crop_px must be a multiple of {multiple} for this generator, got {self.crop_px}: "
                f"use {self.crop_px + (-self.crop_px) % multiple}."
            )

    def lr_at(self, epoch: int) -> float:
        """Learning rate of 0-based ``epoch``: constant, then linear decay over the last ``decay_epochs``.

        The pix2pix/CycleGAN policy (Isola et al. 2017, Zhu et al. 2017): ``lr`` for the first
        ``epochs - decay_epochs`` epochs, then ``lr * (1 - k / (decay_epochs + 1))`` in the k-th decay
        epoch (k = 1 .. decay_epochs), so the rate never reaches 0. A function of the epoch only, so
        a resumed run follows the same schedule, and a constant-rate run stopped at epoch E continues
        exactly as a run launched with ``epochs = E + D, decay_epochs = D``.
        """
        into_decay = max(0, epoch + 1 - (self.epochs - self.decay_epochs))
        return self.lr * (1.0 - into_decay / (self.decay_epochs + 1))

    def schedule_agrees(self, previous: Mapping[str, Any], epochs_done: int) -> bool:
        """Whether the first ``epochs_done`` epochs of a run made with config ``previous`` had this rate.

        ``previous`` is a checkpoint's stored :meth:`to_dict`. True when resuming with these options
        gives the run that one command with them would give (the rate is the only option a resume
        may change; the others are in :meth:`fingerprint`).
        """
        before = replace(
            self,
            lr=float(previous.get("lr", self.lr)),
            epochs=int(previous.get("epochs", self.epochs)),
            decay_epochs=int(previous.get("decay_epochs", 0)),
        )
        return all(math.isclose(before.lr_at(e), self.lr_at(e), rel_tol=1e-9) for e in range(epochs_done))

    @property
    def preset(self) -> TaskPreset:
        base = task_preset(self.task, self.drf)
        weights = base.weights if self.paired_l1 is None else replace(base.weights, paired_l1=self.paired_l1)
        if self.loss_weights:
            weights = replace(weights, **self.loss_weights)
        return replace(base, weights=weights)

    @property
    def needs_lesions(self) -> bool:
        """Whether training reads the lesion labels (a ``lesion_l1`` weight above 0)."""
        return self.preset.weights.lesion_l1 > 0

    @property
    def generator_spec(self) -> GeneratorSpec:
        return self.generator or PRESETS[Task.parse(self.task)].generator

    def fingerprint(self) -> dict[str, Any]:
        """The fields a resumed run must share with the checkpoint (``ema_decay`` only when used)."""
        shared: dict[str, Any] = {
            "task": self.task.value,
            "generator": self.generator_spec.to_dict(),
            "crop_px": self.crop_px,
            "batch_size": self.batch_size,
            "seed": self.seed,
            "drf": self.drf,
            "paired_l1": self.preset.weights.paired_l1,
        }
        if self.loss_weights:
            shared["loss_weights"] = dict(sorted(self.loss_weights.items()))
        if self.ema_decay:
            shared["ema_decay"] = float(self.ema_decay)
        return shared

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(task=self.task.value, data=str(self.data), out=str(self.out))
        data["init_from"] = None if self.init_from is None else str(self.init_from)
        data["generator"] = self.generator_spec.to_dict()
        return data


def task_preset(task: Task | str, drf: int | None = None) -> TaskPreset:
    """The task's preset; for PET, reading the low-dose image of dose-reduction factor ``drf``
    (dataset key ``pet_low_drf{drf}``; ``None`` keeps the preset's own, DRF 10)."""
    base = PRESETS[Task.parse(task)]
    if base.task is not Task.PET_DENOISE or drf is None:
        return base
    return replace(base, dataset_input=f"pet_low_drf{int(drf)}")
