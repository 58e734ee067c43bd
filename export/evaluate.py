"""Held-out evaluation of an exported model, run through the serving engine (what users get).

CT tasks (SynthRAD convention): MAE, ME, RMSE in HU inside the subject's body mask, PSNR and SSIM on
HU clipped to [-1024, 3000] with data range 4024, MAE per HU band (bone reported separately), and the
same metrics for the untranslated input (CBCT→CT: the input CBCT's own error, the baseline to beat).
PET: PSNR gain over the low-dose input, SUVmean bias per organ label, SUVmax bias per lesion.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.simulation.loader import Subject, iter_dataset
from models.training.config import TaskPreset
from models.training.dataset import DATASET_TASK
from service.inference.engine import Engine
from service.volume import Volume

#: Product targets on held-out data (issue contract), by task value.
TARGETS: dict[str, str] = {
    "mr-to-ct": "MAE in the body ≤ 60 HU",
    "cbct-to-ct": "MAE in the body ≤ 40 HU and ≥ 60 % below the input CBCT's",
    "pet-denoise": (
        "PSNR gain ≥ 6 dB at DRF 10, organ SUVmean bias ≤ 3 % and lesion SUVmax bias ≤ 10 % "
        "(held-out means of the per-subject mean absolute biases)"
    ),
}


_CT_CONVENTION = (
    "SynthRAD: MAE/ME/RMSE in HU inside the body mask; PSNR and SSIM on HU clipped to [-1024, 3000], "
    "data range 4024; HU bands on the reference: air < -200, bone >= 250."
)
#: How the card's figures are computed, by task value (written into ``metrics.convention``).
CONVENTIONS: dict[str, str] = {
    "mr-to-ct": _CT_CONVENTION,
    "cbct-to-ct": _CT_CONVENTION,
    "pet-denoise": (
        "PSNR in SUVbw inside the body mask, peak = the full dose's SUVmax in the mask; PSNR gain = the "
        "model's PSNR minus the low-dose input's, against the same full dose. Organ SUVmean bias per tissue "
        "label (>= 50 voxels) and lesion SUVmax bias per lesion label, in % of the full dose's; each "
        "subject's mean and max of |bias|, averaged over subjects (subjects without lesions leave the "
        "lesion means out)."
    ),
}


def same_subjects(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> bool:
    """Whether two ``dataset.json`` records hold the same simulated subjects: subject i depends only on
    (seed, task, site, i), so equal seed, task and site mean the same subjects at any grid or format."""
    return a is not None and b is not None and all(a.get(k) == b.get(k) for k in ("seed", "task", "site"))


def meets_target(task: str, mean: Mapping[str, float]) -> bool:
    """Whether held-out mean metrics meet the task's target in :data:`TARGETS`."""
    if task == "mr-to-ct":
        return mean["mae_hu"] <= 60.0
    if task == "cbct-to-ct":
        return mean["mae_hu"] <= 40.0 and mean["mae_hu"] <= 0.4 * mean["input_mae_hu"]
    organ = mean.get("organ_suvmean_bias_mean_abs_percent", float("nan"))
    lesion = mean.get("lesion_suvmax_bias_mean_abs_percent", float("nan"))
    # Without labels the biases are unknown (NaN): the target cannot be shown met.
    return bool(mean["psnr_gain_db"] >= 6.0 and organ <= 3.0 and lesion <= 10.0)


@dataclass(frozen=True)
class Evaluation:
    """Per-subject metrics and their means (JSON-ready)."""

    subjects: tuple[str, ...]
    per_subject: tuple[dict[str, float], ...]

    def mean(self) -> dict[str, float]:
        keys = self.per_subject[0].keys() if self.per_subject else ()
        return {k: float(np.nanmean([m[k] for m in self.per_subject])) for k in keys}

    def to_dict(self) -> dict[str, Any]:
        return {
            "subjects": list(self.subjects),
            "mean": {k: round(v, 4) for k, v in self.mean().items()},
            "per_subject": [{k: round(v, 4) for k, v in m.items()} for m in self.per_subject],
        }


def ct_metrics(reference: Volume, candidate: Volume, mask: np.ndarray, prefix: str = "") -> dict[str, float]:
    """The card's CT metrics of ``candidate`` against ``reference`` (HU) in ``mask``, flat, keys prefixed."""
    from service.validation.metrics import image_metrics

    mask_volume = reference.with_array(mask.astype(np.float32))
    result = image_metrics(reference, candidate, mask=mask_volume).to_dict()
    flat: dict[str, float] = {}
    for key, value in result.items():
        if isinstance(value, Mapping):
            for sub, v in value.items():
                if isinstance(v, int | float):
                    flat[f"{prefix}{key}_{sub}"] = float(v)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            flat[f"{prefix}{key}"] = float(value)
    return flat


def evaluate_ct(
    engine: Engine,
    model: str,
    subjects: Iterable[Subject],
    preset: TaskPreset,
    version: str | None = None,
) -> Evaluation:
    """sCT / corrected-CT metrics against the subject's CT, and the input's own metrics."""
    names, rows = [], []
    for subject in subjects:
        source = subject.images[preset.dataset_input]
        target = subject.images[preset.dataset_target]
        predicted = engine.translate(source, model=model, version=version).volume
        row = ct_metrics(target, predicted, subject.mask)
        if source.modality == target.modality:  # CBCT: how wrong was the input itself
            row.update(ct_metrics(target, source, subject.mask, "input_"))
        names.append(subject.name)
        rows.append(row)
    return Evaluation(tuple(names), tuple(rows))


def psnr_db(reference: np.ndarray, candidate: np.ndarray, mask: np.ndarray) -> float:
    """PSNR (dB) in ``mask`` with the reference maximum in the mask as peak (PET: SUVmax in the body)."""
    peak = float(reference[mask].max())
    mse = float(np.mean((reference[mask] - candidate[mask]) ** 2))
    return float(10 * np.log10(peak**2 / mse)) if mse > 0 else float("inf")


def evaluate_pet(
    engine: Engine,
    model: str,
    subjects: Iterable[Subject],
    preset: TaskPreset,
    version: str | None = None,
) -> Evaluation:
    """PSNR (peak = reference SUVmax in the body) of output and input, and SUV biases.

    With the simulator's ``labels`` image (``simulate --labels``): SUVmean bias per organ (tissue labels
    with ≥ 50 voxels) and SUVmax bias per lesion (labels ≥ ``LESION_LABEL_BASE``), summarised per subject
    as mean and max absolute percent, so subjects with different organs and lesions average cleanly.
    """
    names, rows = [], []
    for subject in subjects:
        low = subject.images[preset.dataset_input]
        full = subject.images[preset.dataset_target].array
        out = engine.translate(low, model=model, version=version).volume.array
        rows.append(pet_scores(full, low.array, out, subject.mask, subject.labels))
        names.append(subject.name)
    return Evaluation(tuple(names), tuple(rows))


def pet_scores(
    full: np.ndarray, low: np.ndarray, out: np.ndarray, mask: np.ndarray, labels: np.ndarray | None
) -> dict[str, float]:
    """The card's PET figures of ``out`` (SUV) against the full dose, with the low-dose input as baseline.

    ``psnr_db`` and ``input_psnr_db`` (peak: the full dose's SUVmax in ``mask``), their difference
    ``psnr_gain_db``, ``body_suvmean_bias_percent``, and with ``labels`` the organ/lesion bias summaries.
    """
    row = {
        "psnr_db": psnr_db(full, out, mask),
        "input_psnr_db": psnr_db(full, low, mask),
        "body_suvmean_bias_percent": 100 * (float(out[mask].mean()) / float(full[mask].mean()) - 1),
    }
    row["psnr_gain_db"] = row["psnr_db"] - row["input_psnr_db"]
    if labels is not None:
        row.update(label_biases(full, out, labels))
    return row


def lesion_suvmax_biases(full: np.ndarray, out: np.ndarray, labels: np.ndarray) -> dict[int, float]:
    """Signed SUVmax bias (percent) of ``out`` against ``full`` for each lesion label of ``labels``
    (values ≥ LESION_LABEL_BASE, over the whole image), by label value in ascending order."""
    from models.simulation.dataset import LESION_LABEL_BASE

    biases: dict[int, float] = {}
    for value in np.unique(labels):
        if value >= LESION_LABEL_BASE:
            region = labels == value
            biases[int(value)] = 100 * (float(out[region].max()) / max(float(full[region].max()), 1e-6) - 1)
    return biases


def label_biases(full: np.ndarray, out: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Organ SUVmean and lesion SUVmax biases (percent), summarised as mean and max of |bias|."""
    from models.simulation.dataset import LESION_LABEL_BASE

    organ = []
    for value in np.unique(labels):
        region = labels == value
        if value == 0 or value >= LESION_LABEL_BASE or region.sum() < 50:
            continue
        organ.append(100 * (float(out[region].mean()) / max(float(full[region].mean()), 1e-6) - 1))
    lesion = list(lesion_suvmax_biases(full, out, labels).values())
    nan = float("nan")
    return {
        "organ_suvmean_bias_mean_abs_percent": float(np.mean(np.abs(organ))) if organ else nan,
        "organ_suvmean_bias_max_abs_percent": float(np.max(np.abs(organ))) if organ else nan,
        "lesion_suvmax_bias_mean_abs_percent": float(np.mean(np.abs(lesion))) if lesion else nan,
        "lesion_suvmax_bias_max_abs_percent": float(np.max(np.abs(lesion))) if lesion else nan,
    }


def evaluate_folder(
    engine: Engine, model: str, data: str | Path, preset: TaskPreset, version: str | None = None
) -> Evaluation:
    """Evaluate on every subject of a held-out SynthRAD-layout folder (``version``: None = default)."""
    subjects = iter_dataset(data, DATASET_TASK[preset.task])
    if preset.task.value == "pet-denoise":
        return evaluate_pet(engine, model, subjects, preset, version)
    return evaluate_ct(engine, model, subjects, preset, version)
