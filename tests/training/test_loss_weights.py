"""``--loss-weight NAME=VALUE``: checked early, applied to the family, part of what a resume must keep."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from models.training.config import PRESETS, TrainConfig
from models.training.loop import train
from service.cli.main import main
from service.errors import OptionError
from service.inference.card import Task
from tests.training.conftest import TINY, prepared


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


def test_suv_l1_is_refused_for_tasks_not_trained_in_suv(tmp_path: Path) -> None:
    message = r"suv_l1 applies to models trained in SUV \(pet-denoise\), not to mr-to-ct"
    with pytest.raises(OptionError, match=message):
        TrainConfig(task=Task.MR_TO_CT, data=tmp_path, out=tmp_path, loss_weights={"suv_l1": 1.0})
    config = TrainConfig(task=Task.PET_DENOISE, data=tmp_path, out=tmp_path, loss_weights={"suv_l1": 1.0})
    assert config.preset.weights.suv_l1 == 1.0


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
