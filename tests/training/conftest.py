"""Small phantom subjects (MR, CBCT-like CT, PET) for training-loop and export tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from models.networks import GeneratorSpec
from models.training.config import PRESETS
from models.training.data import PreparedSubject, prepare_subject
from service.inference.card import Task
from service.inference.masking import parse_mask_spec
from service.inference.normalisation import parse_normalisation
from service.volume import Modality, Unit, Volume

SPACING = (2.0, 2.0, 3.0)
TINY = {
    Task.MR_TO_CT: GeneratorSpec(kind="unet", in_channels=3, channels=(8, 16, 32)),
    Task.CBCT_TO_CT: GeneratorSpec(
        kind="unet", in_channels=3, channels=(8, 16, 32), head="residual", norm="batch"
    ),
    Task.PET_DENOISE: GeneratorSpec(
        kind="attention_unet", in_channels=3, channels=(8, 16, 32), head="residual", norm="batch"
    ),
}


def phantom_pair(task: Task, seed: int) -> tuple[Volume, Volume]:
    """A cylinder of soft tissue with a bone/lesion core; input and target on one grid."""
    rng = np.random.default_rng(seed)
    _, y, x = np.mgrid[0:8, 0:44, 0:36]
    radius = 13 + rng.integers(0, 3)
    body = (y - 22) ** 2 + (x - 18) ** 2 < radius**2
    core = (y - 22) ** 2 + (x - 18 + rng.integers(-2, 3)) ** 2 < 16
    ct = np.where(body, 40.0, -1000.0)
    ct[core] = 900.0
    if task is Task.MR_TO_CT:
        mr = np.where(body, 600.0, 4.0)
        mr[core] = 40.0
        src = Volume(
            (mr + rng.normal(0, 5, mr.shape)).astype(np.float32),
            SPACING,
            modality=Modality.MR,
            unit=Unit.MR_AU,
        )
        return src, Volume(ct, SPACING, modality=Modality.CT, unit=Unit.HU)
    if task is Task.CBCT_TO_CT:
        cbct = ct + 60.0 * body + rng.normal(0, 20, ct.shape)
        return (
            Volume(cbct, SPACING, modality=Modality.CT, unit=Unit.HU),
            Volume(ct, SPACING, modality=Modality.CT, unit=Unit.HU),
        )
    suv = np.where(body, 1.0, 0.0)
    suv[core] = 6.0
    low = np.clip(suv + rng.normal(0, 0.3, suv.shape) * body, 0, None)
    return (
        Volume(low, SPACING, modality=Modality.PT, unit=Unit.SUVBW),
        Volume(suv, SPACING, modality=Modality.PT, unit=Unit.SUVBW),
    )


def write_pet_folder(root: Path, seeds: range, dataset: dict[str, object] | None = None) -> Path:
    """Phantom PET subjects ``P<seed>`` in the SynthRAD layout (low dose at DRF 10, full dose, mask),
    with ``dataset`` written as the folder's ``dataset.json`` when given (what simulate writes)."""
    from service.imageio import write_image

    for n in seeds:
        subject = root / f"P{n:03d}"
        subject.mkdir(parents=True)
        low, full = phantom_pair(Task.PET_DENOISE, n)
        write_image(low, subject / "pet_low_drf10.nii.gz")
        write_image(full, subject / "pet_full.nii.gz")
        mask = (full.array > 0.5).astype(np.float32)
        write_image(
            Volume(mask, full.spacing_mm, modality=Modality.PT, unit=Unit.SUVBW), subject / "mask.nii.gz"
        )
    if dataset is not None:
        (root / "dataset.json").write_text(json.dumps(dataset))
    return root


def prepared(task: Task, seeds: range) -> list[PreparedSubject]:
    preset = PRESETS[task]
    out = []
    for seed in seeds:
        src, tgt = phantom_pair(task, seed)
        out.append(
            prepare_subject(
                f"s{seed}",
                src,
                tgt,
                input_norm=parse_normalisation(None, preset.input["normalisation"]),
                output_norm=parse_normalisation(None, preset.output["normalisation"]),
                mask_spec=parse_mask_spec(None, preset.body_mask, preset.input["modality"]),
            )
        )
    return out


@pytest.fixture(params=list(Task), ids=lambda t: t.value)
def task(request: pytest.FixtureRequest) -> Task:
    return request.param  # type: ignore[no-any-return]
