"""``radtranslate export`` end to end: a run folder in, a repository entry out, with its card's held-out
figures and, with ``--confirm-data``, a second set of new subjects scored beside them."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from export.cli import training_data_folder, training_hardware
from service.cli.main import EXIT_INPUT, main
from tests.training.conftest import write_pet_folder
from tools.model_docs import render


def _folder(root: Path, seeds: range, seed: int) -> Path:
    return write_pet_folder(root, seeds, {"seed": seed, "task": "pet", "site": "brain"})


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("export_cli")
    paths = {
        "train": _folder(root / "train", range(0, 2), seed=1),
        "test": _folder(root / "test", range(10, 12), seed=1001),
        "confirm": _folder(root / "confirm", range(20, 23), seed=2001),
        "run": root / "run",
        "doc": root / "doc.json",
    }
    paths["doc"].write_text(json.dumps({"intended_use": "tests only", "limitations": ["untrained"]}))
    train = [
        "train", "--task", "pet-denoise", "--data", str(paths["train"]), "--out", str(paths["run"]),
        "--epochs", "1", "--steps-per-epoch", "1", "--batch-size", "2", "--crop-px", "32",
        "--channels", "8,16,32", "--context-slices", "3", "--threads", "1", "--seed", "3",
        "--val-fraction", "0.5", "--no-progress",
    ]  # fmt: skip
    assert main(train) == 0
    return paths


def _export(paths: dict[str, Path], repo: Path, *extra: str) -> int:
    return main([
        "export", "--run", str(paths["run"]), "--name", "pet_tiny", "--repository", str(repo),
        "--test-data", str(paths["test"]), "--doc", str(paths["doc"]), *extra,
    ])  # fmt: skip


def test_confirmation_set_is_scored_into_the_card_as_score_scores_it(
    setup: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "repository"
    assert _export(setup, repo, "--confirm-data", str(setup["confirm"])) == 0
    printed = json.loads(capsys.readouterr().out)
    card: dict[str, Any] = json.loads((repo / "pet_tiny" / "1" / "card.json").read_text())
    metrics = card["metrics"]
    assert metrics["held_out"]["subjects"] == ["P010", "P011"]
    confirmation = metrics["confirmation"]
    assert confirmation["subjects"] == ["P020", "P021", "P022"]
    assert confirmation["test_dataset"]["seed"] == 2001 and confirmation["test_data"] == "confirm"
    assert confirmation["target_met"] is False  # an untrained network gains no 6 dB
    assert card["training"]["dataset"]["seed"] == 1  # the training set's dataset.json
    # Where the run trained (its timing.json), not where it was exported.
    assert card["training"]["hardware"] == training_hardware(card["training"]["timing"])
    assert (
        card["training"]["hardware"].startswith("CPU: ") and "1 torch threads" in card["training"]["hardware"]
    )
    assert "SUVmax" in metrics["convention"] and "HU" not in metrics["convention"]  # PET's own convention
    assert printed["confirmation_mean"] == pytest.approx(confirmation["mean"], nan_ok=True)
    # score, a separate path through the serving engine, gives the card's confirmation figures
    assert (
        main(["score", "--model", "pet_tiny", "--repository", str(repo), "--data", str(setup["confirm"])])
        == 0
    )
    scored = json.loads(capsys.readouterr().out)
    assert scored["subjects"] == confirmation["subjects"]
    for got, want in zip(scored["per_subject"], confirmation["per_subject"], strict=True):
        assert got == pytest.approx(want, nan_ok=True)
    assert np.isfinite(confirmation["mean"]["psnr_gain_db"])
    assert confirmation["mean"]["psnr_gain_db"] != metrics["held_out"]["mean"]["psnr_gain_db"]

    page = render(card)
    assert "- confirmation set: 3 other subjects (seed 2001), never used to choose between runs" in page
    gain = f"| PSNR gain over input (dB) | {metrics['held_out']['mean']['psnr_gain_db']:.3g} | "
    assert gain + f"{confirmation['mean']['psnr_gain_db']:.3g} |" in page


def test_without_confirmation_the_card_and_page_have_none(
    setup: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "repository"
    assert _export(setup, repo) == 0
    assert "confirmation_mean" not in json.loads(capsys.readouterr().out)
    card = json.loads((repo / "pet_tiny" / "1" / "card.json").read_text())
    assert "confirmation" not in card["metrics"]
    page = render(card)
    assert "confirmation" not in page and "| held-out metric | mean |\n|---|---|\n" in page


@pytest.mark.parametrize(
    ("which", "message"),
    [
        ("test", r"--confirm-data is --test-data .*: a confirmation set must hold other subjects"),
        ("same_seed", r"was simulated with the seed of --test-data \(1001\): it holds the same subjects"),
        ("train_seed", r"was simulated with the seed of the training data \(1\)"),
        ("missing", r"is not a folder: pass a paired SynthRAD-layout folder simulated with a seed"),
    ],
)
def test_a_confirmation_set_that_is_not_new_subjects_is_refused_before_anything_is_written(
    setup: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], which: str, message: str
) -> None:
    folders = {
        "test": setup["test"],
        "same_seed": _folder(tmp_path / "again", range(30, 31), seed=1001),
        "train_seed": _folder(tmp_path / "trainseed", range(30, 31), seed=1),
        "missing": tmp_path / "nowhere",
    }
    repo = tmp_path / "repository"
    assert _export(setup, repo, "--confirm-data", str(folders[which])) == EXIT_INPUT
    assert re.search(message, capsys.readouterr().err)
    assert not repo.exists()


def test_a_runs_relative_data_folder_is_found_from_the_run_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``train --data d --out runs/r`` run in ``work/``; ``export --run work/runs/r`` run elsewhere."""
    work = tmp_path / "work"
    (work / "d").mkdir(parents=True)
    (work / "runs" / "r").mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "d").mkdir(parents=True)  # a folder of the same name where export runs: not taken
    monkeypatch.chdir(elsewhere)
    config: dict[str, Any] = {"data": "d", "out": "runs/r"}
    assert training_data_folder(work / "runs" / "r", config) == work / "d"
    assert training_data_folder(Path("../work/runs/r"), config) == work.resolve() / "d"
    # out does not end the run folder's path (the run was moved): data as given, from here
    assert training_data_folder(tmp_path / "moved", config) == Path("d")
    assert training_data_folder(tmp_path / "moved", {"data": "gone", "out": "runs/r"}) is None
    absolute = {"data": str(work / "d"), "out": str(work / "runs" / "r")}
    assert training_data_folder(tmp_path / "anywhere", absolute) == work / "d"
    assert training_data_folder(work / "runs" / "r", {}) is None


def test_training_hardware_names_each_kind_of_session_once() -> None:
    gpu = {
        "seconds": 5.0,
        "machine": "x86_64 x86_64",
        "cpu_count": 16,
        "torch_threads": 3,
        "device": "NVIDIA H200",
    }
    cpu = {"seconds": 9.0, "machine": "x86_64", "cpu_count": 2, "torch_threads": 2, "device": "cpu"}
    timing = {"seconds_total": 19.0, "sessions": [gpu, cpu, gpu]}
    assert (
        training_hardware(timing)
        == "NVIDIA H200 GPU (x86_64 host, 16 CPUs); CPU: x86_64, 2 CPUs, 2 torch threads"
    )
    assert training_hardware(None) == "not recorded (the run folder has no timing.json)"


def test_best_pt_keeps_the_training_set_so_export_names_it_after_the_folder_is_gone(
    setup: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    import torch

    training_set = {"seed": 1, "task": "pet", "site": "brain"}  # the training folder's dataset.json
    for name in ("best.pt", "checkpoint.pt"):
        assert torch.load(setup["run"] / name, weights_only=False)["dataset"] == training_set
    moved = tmp_path / "moved_run"  # a run folder whose training folder cannot be found
    shutil.copytree(setup["run"], moved)
    state = torch.load(moved / "best.pt", weights_only=False)
    state["config"]["data"] = str(tmp_path / "deleted")
    torch.save(state, moved / "best.pt")
    paths = {**setup, "run": moved}
    repo = tmp_path / "repository"
    # The training seed is still refused for a confirmation set: best.pt says which subjects trained it.
    same_as_training = _folder(tmp_path / "confirm_seed1", range(30, 31), seed=1)
    assert _export(paths, repo, "--confirm-data", str(same_as_training)) == EXIT_INPUT
    assert "seed of the training data" in capsys.readouterr().err
    assert _export(paths, repo) == 0
    card = json.loads((repo / "pet_tiny" / "1" / "card.json").read_text())
    assert card["training"]["dataset"] == training_set


def test_a_resume_on_other_data_is_refused(setup: dict[str, Path], tmp_path: Path) -> None:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(setup["run"], run)
    other = _folder(tmp_path / "other", range(0, 2), seed=5)  # the same images, simulated as seed 5
    resume = [
        "train", "--task", "pet-denoise", "--data", str(other), "--out", str(run), "--resume",
        "--epochs", "2", "--steps-per-epoch", "1", "--batch-size", "2", "--crop-px", "32",
        "--channels", "8,16,32", "--context-slices", "3", "--threads", "1", "--seed", "3",
        "--val-fraction", "0.5", "--no-progress",
    ]  # fmt: skip
    before = (run / "checkpoint.pt").read_bytes()
    assert main(resume) == EXIT_INPUT
    assert (run / "checkpoint.pt").read_bytes() == before
