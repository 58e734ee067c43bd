"""tools/train_simulated.py: subjects simulated in memory are the simulate command's, and training on
them is ``radtranslate train`` on the folder (the GPU runs of mr_to_ct_brain and cbct_to_ct_brain
version 4 were made this way, on a machine without SimpleITK)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from models.simulation.dataset import DatasetOptions, simulate_in_memory, write_dataset
from models.simulation.loader import iter_dataset
from tools.train_simulated import _replace_epochs, digest, fit_epochs

pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[2]
TOOL = str(ROOT / "tools" / "train_simulated.py")
#: Run the tool as on the GPU machine: SimpleITK cannot be imported.
NO_SITK = "import runpy, sys; sys.modules['SimpleITK'] = None; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"  # noqa: E501


@pytest.mark.parametrize("task", ["mr-to-ct", "cbct-to-ct"])
def test_in_memory_subjects_are_those_the_folder_holds(tmp_path: Path, task: str) -> None:
    options = DatasetOptions(task=task, site="brain", subjects=2, seed=7, downscale=4, write_labels=True)  # type: ignore[arg-type]
    write_dataset(tmp_path / "data", options)
    on_disk = list(iter_dataset(tmp_path / "data", task))
    in_memory = simulate_in_memory(options, tmp_path / "data", workers=2)
    assert [s.name for s in in_memory] == [s.name for s in on_disk]
    for mem, disk in zip(in_memory, on_disk, strict=True):
        assert digest(mem) == digest(disk)
        assert mem.images.keys() == disk.images.keys()
        for key in mem.images:
            assert mem.images[key].array.dtype == np.float32
            np.testing.assert_array_equal(mem.images[key].array, disk.images[key].array)
            assert mem.images[key].same_grid(disk.images[key])
        np.testing.assert_array_equal(mem.mask, disk.mask)
        assert mem.labels is not None and disk.labels is not None
        np.testing.assert_array_equal(mem.labels, disk.labels)
    # A changed voxel changes the digest.
    changed = in_memory[0].images["ct"].array.copy()
    changed[0, 0, 0] += 1.0
    altered = in_memory[0].images["ct"].with_array(changed)
    in_memory[0].images["ct"] = altered
    assert digest(in_memory[0]) != digest(on_disk[0])


def test_fit_epochs_fills_the_budget_and_refuses_what_cannot_fit() -> None:
    fit = fit_epochs(100.0, steps_per_epoch=10, step_s=1.0, validate_s=2.0, decay_fraction=0.4)
    assert (fit.epochs, fit.decay_epochs, fit.seconds_per_epoch) == (8, 3, 12.0)
    assert fit_epochs(24.0, 10, 1.0, 2.0, 0.0).epochs == 2
    with pytest.raises(ValueError, match="holds 1 epoch"):
        fit_epochs(23.9, 10, 1.0, 2.0, 0.4)
    with pytest.raises(ValueError, match="step_s must be a finite number"):
        fit_epochs(100.0, 10, math.nan, 2.0, 0.4)
    with pytest.raises(ValueError, match="decay_fraction"):
        fit_epochs(100.0, 10, 1.0, 2.0, 1.0)
    with pytest.raises(ValueError, match="holds 0 epoch"):
        fit_epochs(-5.0, 10, 1.0, 2.0, 0.4)


def test_replace_epochs_keeps_every_other_option() -> None:
    argv = ["--task", "mr-to-ct", "--epochs", "20", "--decay-epochs=5", "--lr", "5e-4"]
    expected = ["--task", "mr-to-ct", "--lr", "5e-4", "--epochs", "44", "--decay-epochs", "18"]
    assert _replace_epochs(argv, 44, 18) == expected


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", NO_SITK, TOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=600
    )


TRAIN = [
    *("--task", "mr-to-ct", "--data", "data", "--steps-per-epoch", "2", "--batch-size", "2"),
    *("--crop-px", "32", "--channels", "4,8", "--threads", "1", "--seed", "3", "--lr", "5e-4"),
    *("--ema-decay", "0.9", "--no-progress"),
]


def test_training_on_the_pickle_is_training_on_the_folder(tmp_path: Path) -> None:
    """Same options, same subjects: the tool's run and ``radtranslate train``'s give the same epochs."""
    options = DatasetOptions(task="mr-to-ct", site="brain", subjects=3, seed=7, downscale=4)  # type: ignore[arg-type]
    write_dataset(tmp_path / "data", options)
    sim = _run("simulate", "--task", "mr-to-ct", "--site", "brain", "--subjects", "3", "--seed", "7",
               "--downscale", "4", "--out", "subjects.pkl", cwd=tmp_path)  # fmt: skip
    assert sim.returncode == 0, sim.stderr
    folder = subprocess.run(
        [sys.executable, TOOL, "digest", "data"], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert folder.returncode == 0, folder.stderr
    assert folder.stdout.splitlines() == sim.stdout.splitlines()[:3]

    tool = _run(
        "train",
        "--subjects-file",
        "subjects.pkl",
        "--",
        *TRAIN,
        "--epochs",
        "2",
        "--out",
        "runs/tool",
        cwd=tmp_path,
    )
    assert tool.returncode == 0, tool.stderr
    cli = [*TRAIN, "--epochs", "2", "--out", str(tmp_path / "runs/cli"), "--data", str(tmp_path / "data")]
    direct = subprocess.run(
        [sys.executable, "-m", "service.cli.main", "train", *cli],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert direct.returncode == 0, direct.stderr
    rows = {
        name: [
            json.loads(line) for line in (tmp_path / "runs" / name / "metrics.jsonl").read_text().splitlines()
        ]
        for name in ("tool", "cli")
    }
    for a, b in zip(rows["tool"], rows["cli"], strict=True):
        assert a["val_mae"] is not None  # one of the 3 subjects validates
        assert a["val_mae"] == b["val_mae"] and a["loss_g"] == b["loss_g"]
    # --resume goes through the tool too: one epoch, then a resume to two, gives the same epochs.
    first = ["--subjects-file", "subjects.pkl", "--", *TRAIN, "--out", "runs/resumed"]
    assert _run("train", *first, "--epochs", "1", cwd=tmp_path).returncode == 0
    command_before = (tmp_path / "runs" / "resumed" / "command.txt").read_text()
    again = _run("train", *first, "--epochs", "1", cwd=tmp_path)  # a second new run in the same folder
    assert again.returncode == 2 and "pass --resume to continue that run" in again.stderr
    resumed = _run("train", *first, "--epochs", "2", "--resume", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert (tmp_path / "runs" / "resumed" / "command.txt").read_text() == command_before
    lines = (tmp_path / "runs" / "resumed" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["val_mae"] for line in lines] == [r["val_mae"] for r in rows["tool"]]
    import torch

    # Both runs keep the training set's record; the tool's is what simulate wrote into the folder.
    folder_record = json.loads((tmp_path / "data" / "dataset.json").read_text())
    for name in ("tool", "cli"):
        assert (
            torch.load(tmp_path / "runs" / name / "best.pt", weights_only=False)["dataset"] == folder_record
        )
    command = (tmp_path / "runs" / "tool" / "command.txt").read_text()
    assert command.startswith("radtranslate train --task mr-to-ct --data data ") and "--epochs 2" in command


def test_fit_until_sizes_the_run_and_writes_its_command(tmp_path: Path) -> None:
    sim = _run("simulate", "--task", "mr-to-ct", "--site", "brain", "--subjects", "2", "--seed", "7",
               "--downscale", "4", "--out", "subjects.pkl", cwd=tmp_path)  # fmt: skip
    assert sim.returncode == 0, sim.stderr
    deadline = time.time() + 25
    fit = ["--fit-until", str(deadline), "--calibration-steps", "2"]
    run = _run(
        "train", "--subjects-file", "subjects.pkl", *fit, "--", *TRAIN, "--out", "runs/fit", cwd=tmp_path
    )
    assert run.returncode == 0, run.stderr
    assert "calibrated:" in run.stdout
    # Sized to the deadline: with calibration epochs timed to 0.1 s, a 0.0 s epoch once planned
    # thousands of epochs and the run ended minutes late (metrics now keep milliseconds).
    assert time.time() < deadline + 60, run.stdout
    command = (tmp_path / "runs" / "fit" / "command.txt").read_text().split()
    epochs = int(command[command.index("--epochs") + 1])
    decay = int(command[command.index("--decay-epochs") + 1])
    assert epochs >= 2 and decay == round(0.4 * epochs)
    lines = (tmp_path / "runs" / "fit" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == epochs
    assert not (tmp_path / "runs" / "fit.calibration").exists()  # the throwaway run is removed
    resume = ["--", *TRAIN, "--out", "runs/fit", "--resume"]
    both = _run("train", "--subjects-file", "subjects.pkl", *fit, *resume, cwd=tmp_path)
    assert both.returncode == 2 and "cannot resume" in both.stderr


def test_a_deadline_too_close_is_refused(tmp_path: Path) -> None:
    sim = _run("simulate", "--task", "mr-to-ct", "--site", "brain", "--subjects", "2", "--seed", "7",
               "--downscale", "4", "--out", "subjects.pkl", cwd=tmp_path)  # fmt: skip
    assert sim.returncode == 0, sim.stderr
    run = _run("train", "--subjects-file", "subjects.pkl", "--fit-until", str(time.time() + 1),
               "--calibration-steps", "2", "--", *TRAIN, "--out", "runs/late", cwd=tmp_path)  # fmt: skip
    assert run.returncode != 0
    assert "lower --steps-per-epoch or give more time" in run.stderr
    assert list((tmp_path / "runs").iterdir()) == []  # neither the run nor its calibration is left


def test_a_pickle_not_written_by_the_tool_is_refused(tmp_path: Path) -> None:
    import pickle

    (tmp_path / "old.pkl").write_bytes(pickle.dumps([1, 2, 3]))  # e.g. a bare list of subjects
    run = _run("train", "--subjects-file", "old.pkl", "--", *TRAIN, "--out", "runs/x", cwd=tmp_path)
    assert run.returncode == 2
    assert "cannot be read as a file written by this tool's simulate command" in run.stderr
    assert not (tmp_path / "runs").exists()
    (tmp_path / "cut.pkl").write_bytes((tmp_path / "old.pkl").read_bytes()[:5])  # truncated
    for name in ("cut.pkl", "missing.pkl"):
        run = _run("train", "--subjects-file", name, "--", *TRAIN, "--out", "runs/x", cwd=tmp_path)
        assert run.returncode == 2 and "cannot be read" in run.stderr


def test_a_missing_or_unfit_parent_is_refused_before_the_calibration(tmp_path: Path) -> None:
    """--init-from is checked before --fit-until calibrates (device time) and before the run's folder
    or command.txt is written; the refusal is the project's message, not a traceback."""
    sim = _run("simulate", "--task", "mr-to-ct", "--site", "brain", "--subjects", "2", "--seed", "7",
               "--downscale", "4", "--out", "subjects.pkl", cwd=tmp_path)  # fmt: skip
    assert sim.returncode == 0, sim.stderr
    fit = ["--fit-until", str(time.time() + 600), "--calibration-steps", "2"]
    run = _run("train", "--subjects-file", "subjects.pkl", *fit, "--", *TRAIN, "--out", "runs/child",
               "--init-from", "runs/none/best.pt", cwd=tmp_path)  # fmt: skip
    assert run.returncode == 2, run.stderr
    assert (
        "error: --init-from: runs/none/best.pt is not a file: pass the checkpoint.pt or best.pt" in run.stderr
    )
    assert "Traceback" not in run.stderr and "calibrated" not in run.stdout
    assert not (tmp_path / "runs").exists()
    (tmp_path / "notes.pt").write_text("not a checkpoint")
    run = _run("train", "--subjects-file", "subjects.pkl", *fit, "--", *TRAIN, "--out", "runs/child",
               "--init-from", "notes.pt", cwd=tmp_path)  # fmt: skip
    assert run.returncode == 2 and "notes.pt is not a PyTorch file" in run.stderr
    assert not (tmp_path / "runs").exists()
