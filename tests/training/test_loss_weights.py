"""``--loss-weight NAME=VALUE``: checked early, applied to the family, part of what a resume must keep."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from models.training.config import PRESETS, TrainConfig
from models.training.data import PreparedSubject
from models.training.loop import train
from service.cli.main import main
from service.errors import InputError, OptionError
from service.inference.card import Task
from tests.training.conftest import TINY, phantom_pair, prepared


def test_overrides_replace_only_the_named_weights(tmp_path: Path) -> None:
    config = TrainConfig(
        task=Task.CBCT_TO_CT,
        data=tmp_path,
        out=tmp_path,
        paired_l1=100.0,
        loss_weights={"cycle": "1", "identity": 0},  # type: ignore[dict-item]
    )
    preset = PRESETS[Task.CBCT_TO_CT].weights
    assert config.preset.weights == replace(preset, cycle=1.0, identity=0.0, paired_l1=100.0)
    assert config.fingerprint()["loss_weights"] == {"cycle": 1.0, "identity": 0.0}
    assert "loss_weights" not in TrainConfig(task=Task.CBCT_TO_CT, data=tmp_path, out=tmp_path).fingerprint()


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        (
            {"cycel": 1.0},
            r"loss weight 'cycel' is not a loss of the training families: use one of adversarial, l1",
        ),
        ({"cycle": -1.0}, r"loss weight cycle must be a finite number ≥ 0, got -1.0: pass e.g. cycle=1"),
        ({"identity": "nan"}, r"loss weight identity must be a finite number ≥ 0, got 'nan'"),
        ({"l1": "heavy"}, r"loss weight l1 must be a finite number ≥ 0, got 'heavy'"),
    ],
)
def test_bad_overrides_are_refused_with_the_fix(
    tmp_path: Path, weights: dict[str, object], message: str
) -> None:
    with pytest.raises(OptionError, match=message):
        TrainConfig(
            task=Task.CBCT_TO_CT,
            data=tmp_path,
            out=tmp_path,
            loss_weights=weights,  # type: ignore[arg-type]
        )


def test_cli_refuses_a_malformed_override_before_reading_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["train", "--task", "cbct-to-ct", "--data", str(tmp_path / "none"), "--out", str(tmp_path / "run")]
    assert main([*args, "--loss-weight", "cycle"]) != 0
    assert (
        "--loss-weight takes NAME=VALUE, got 'cycle': write e.g. --loss-weight cycle=1."
        in capsys.readouterr().err
    )
    assert main([*args, "--loss-weight", "cycle=-2"]) != 0
    assert "loss weight cycle must be a finite number ≥ 0" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def _config(out: Path, epochs: int, **weights: float) -> TrainConfig:
    return TrainConfig(
        task=Task.CBCT_TO_CT, data=out, out=out, epochs=epochs, steps_per_epoch=2, batch_size=2, crop_px=32,
        generator=TINY[Task.CBCT_TO_CT], threads=1, seed=3, paired_l1=100.0, loss_weights=weights,
    )  # fmt: skip


def test_zero_weight_terms_are_skipped_and_resume_keeps_the_weights(tmp_path: Path) -> None:
    subjects = prepared(Task.CBCT_TO_CT, range(3))
    run = tmp_path / "run"
    train(_config(run, 1, cycle=1.0, identity=0.0), subjects[:2], subjects[2:], progress=False)
    record = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    assert record["identity"] == 0.0 and record["cycle"] > 0 and record["paired_l1"] > 0
    with pytest.raises(OptionError, match="use the same options or a new --out folder"):
        train(
            _config(run, 2, cycle=10.0, identity=0.0), subjects[:2], subjects[2:], progress=False, resume=True
        )
    train(_config(run, 2, cycle=1.0, identity=0.0), subjects[:2], subjects[2:], progress=False, resume=True)
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 2


def test_suv_l1_measures_the_error_in_suv_and_hot_voxels_count_fully() -> None:
    import torch

    from models.training.losses import suv_l1

    suv = torch.tensor([[[[0.5, 9.0]]]])
    target = torch.log1p(suv)
    # 10 % too high everywhere: the SUV errors are 0.05 and 0.9, mean 0.475.
    prediction = torch.log1p(suv * 1.1)
    assert float(suv_l1(prediction, target)) == pytest.approx(0.475, rel=1e-5)
    # In log space the hot voxel's 0.9 SUV error counts less than the cold voxel's 0.05 would at its SUV.
    log_errors = (prediction - target).abs()[0, 0, 0]
    assert float(log_errors[1]) / 0.9 < float(log_errors[0]) / 0.05
    # An untrained network's huge output cannot overflow the loss.
    assert torch.isfinite(suv_l1(torch.full((1, 1, 1, 2), 200.0), target))


def test_a_pet_run_with_suv_l1_logs_the_term_and_one_without_does_not(tmp_path: Path) -> None:
    subjects = prepared(Task.PET_DENOISE, range(3))
    records = []
    for name, weights in (("with", {"suv_l1": 5.0}), ("without", {})):
        config = TrainConfig(
            task=Task.PET_DENOISE, data=tmp_path, out=tmp_path / name, epochs=1, steps_per_epoch=2,
            batch_size=2, crop_px=32, generator=TINY[Task.PET_DENOISE], threads=1, seed=3,
            loss_weights=weights,
        )  # fmt: skip
        train(config, subjects[:2], subjects[2:], progress=False)
        records.append(json.loads((tmp_path / name / "metrics.jsonl").read_text().splitlines()[0]))
    assert records[0]["suv_l1"] > 0 and "suv_l1" not in records[1]


def test_lesion_l1_averages_the_suv_error_over_lesion_voxels_only() -> None:
    import torch

    from models.training.losses import lesion_suv_l1

    suv = torch.tensor([[[[1.0, 10.0], [1.0, 12.0]]]])
    target = torch.log1p(suv)
    # The cold voxels are 50 % off, the two lesion voxels 1 and 3 SUV low: the lesion mean is 2 SUV.
    prediction = torch.log1p(torch.tensor([[[[1.5, 9.0], [0.5, 9.0]]]])).requires_grad_()
    lesions = torch.tensor([[[[False, True], [False, True]]]])
    loss = lesion_suv_l1(prediction, target, lesions)
    assert float(loss.detach()) == pytest.approx(2.0, rel=1e-5)
    loss.backward()
    assert prediction.grad is not None
    grad = prediction.grad[0, 0]
    assert float(grad[0, 0]) == 0.0 and float(grad[1, 0]) == 0.0 and float(grad[0, 1]) < 0
    # A batch without lesions adds nothing (and no NaN).
    assert float(lesion_suv_l1(prediction.detach(), target, torch.zeros_like(lesions))) == 0.0


@pytest.mark.parametrize("name", ["suv_l1", "lesion_l1"])
def test_suv_terms_are_refused_for_ct_tasks_with_the_fix(name: str, tmp_path: Path) -> None:
    with pytest.raises(OptionError, match=f"drop --loss-weight {name}"):
        TrainConfig(task=Task.CBCT_TO_CT, data=tmp_path, out=tmp_path, loss_weights={name: 2.0})
    config = TrainConfig(task=Task.PET_DENOISE, data=tmp_path, out=tmp_path, loss_weights={name: 2.0})
    assert getattr(config.preset.weights, name) == 2.0
    assert config.needs_lesions is (name == "lesion_l1")


def _with_lesions(subjects: list[PreparedSubject]) -> list[PreparedSubject]:
    """The phantoms' hot cores as lesions (the core is the only SUV-6 region)."""
    return [replace(s, lesions=s.target_native > 3.0) for s in subjects]


def test_the_sampler_carries_the_lesions_of_the_sampled_slice() -> None:
    import numpy as np

    from models.training.data import SliceSampler

    subjects = _with_lesions(prepared(Task.PET_DENOISE, range(2)))
    sampler = SliceSampler(
        subjects, context_slices=3, crop_px=48, input_pad=0.0, target_pad=0.0, lesion_channel=True
    )
    _, y, m = sampler.batch(np.random.default_rng(0), 6)
    assert m.shape == (6, 2, 48, 48) and m.dtype == bool
    # The lesion channel marks exactly the target's hot voxels, inside the body.
    hot = np.expm1(y[:, 0]) > 3.0
    assert np.array_equal(m[:, 1], hot) and hot.any()
    assert not (m[:, 1] & ~m[:, 0]).any()
    with pytest.raises(InputError, match="s0, s1 carry no lesion labels: simulate with --labels"):
        SliceSampler(
            prepared(Task.PET_DENOISE, range(2)), context_slices=3, crop_px=48, input_pad=0.0,
            target_pad=0.0, lesion_channel=True,
        )  # fmt: skip


def test_a_pet_run_with_lesion_l1_logs_the_term(tmp_path: Path) -> None:
    subjects = _with_lesions(prepared(Task.PET_DENOISE, range(3)))
    config = TrainConfig(
        task=Task.PET_DENOISE, data=tmp_path, out=tmp_path / "run", epochs=1, steps_per_epoch=2,
        batch_size=2, crop_px=32, generator=TINY[Task.PET_DENOISE], threads=1, seed=3,
        loss_weights={"lesion_l1": 4.0},
    )  # fmt: skip
    train(config, subjects[:2], subjects[2:], progress=False)
    record = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])
    assert record["lesion_l1"] > 0 and "suv_l1" not in record


def test_lesion_l1_refuses_a_dataset_without_labels_naming_the_subject(tmp_path: Path) -> None:
    import numpy as np

    from models.training.dataset import load_prepared
    from service.imageio import write_image
    from service.volume import Modality, Unit, Volume

    subject = tmp_path / "data" / "P001"
    subject.mkdir(parents=True)
    low, full = phantom_pair(Task.PET_DENOISE, 0)
    write_image(low, subject / "pet_low_drf10.nii.gz")
    write_image(full, subject / "pet_full.nii.gz")
    mask = (full.array > 0.5).astype(np.float32)
    write_image(Volume(mask, full.spacing_mm, modality=Modality.PT, unit=Unit.SUVBW), subject / "mask.nii.gz")
    config = TrainConfig(
        task=Task.PET_DENOISE, data=tmp_path / "data", out=tmp_path / "run", loss_weights={"lesion_l1": 1.0}
    )
    with pytest.raises(InputError, match=r"'P001' has no labels image.*simulate the data with --labels"):
        load_prepared(config)
    # With a labels image the lesions (labels ≥ 100) reach the prepared subject.
    labels = np.where(full.array > 3.0, 101.0, 0.0).astype(np.float32)
    write_image(
        Volume(labels, full.spacing_mm, modality=Modality.PT, unit=Unit.SUVBW), subject / "labels.nii.gz"
    )
    (train_subjects, _) = load_prepared(config)
    assert train_subjects[0].lesions is not None
    assert np.array_equal(train_subjects[0].lesions, full.array > 3.0)
