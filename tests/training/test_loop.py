"""A few steps of each family on tiny phantoms prove the loop: losses, checkpoints, exact resume."""

from __future__ import annotations

import json
import platform
from pathlib import Path

import pytest
import torch

from models.training.config import TrainConfig
from models.training.loop import train
from service.errors import OptionError
from service.inference.card import Task
from tests.training.conftest import TINY, prepared


def _config(task: Task, out: Path, epochs: int, decay_epochs: int = 0) -> TrainConfig:
    return TrainConfig(
        task=task, data=out, out=out, epochs=epochs, steps_per_epoch=2, batch_size=2, crop_px=32,
        generator=TINY[task], threads=1, seed=3, decay_epochs=decay_epochs,
    )  # fmt: skip


def _weights(run: Path) -> dict[str, torch.Tensor]:
    """Every network's weights in a run's checkpoint, keyed by network and parameter name."""
    modules = torch.load(run / "checkpoint.pt", weights_only=False)["family"]["modules"]
    return {f"{net}.{k}": v for net, state in modules.items() for k, v in state.items()}


def test_each_family_trains_checkpoints_and_logs(task: Task, tmp_path: Path) -> None:
    subjects = prepared(task, range(3))
    result = train(_config(task, tmp_path / "run", 2), subjects[:2], subjects[2:], progress=False)
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2]
    assert all(r["loss_g"] > 0 and r["loss_d"] > 0 and r["val_mae"] > 0 for r in lines)
    assert result.best is not None and result.best.is_file()
    assert result.best_val_mae == min(r["val_mae"] for r in lines)
    assert 0 < lines[0]["session_elapsed_s"] <= lines[1]["session_elapsed_s"] <= result.seconds + 0.1


def test_resume_continues_exactly_where_it_stopped(tmp_path: Path) -> None:
    from service.inference.card import Task

    subjects = prepared(Task.MR_TO_CT, range(3))
    train(_config(Task.MR_TO_CT, tmp_path / "a", 2), subjects[:2], subjects[2:], progress=False)
    train(_config(Task.MR_TO_CT, tmp_path / "b", 1), subjects[:2], subjects[2:], progress=False)
    train(_config(Task.MR_TO_CT, tmp_path / "b", 2), subjects[:2], subjects[2:], progress=False, resume=True)
    a = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=False)["family"]["modules"]["g"]
    b = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=False)["family"]["modules"]["g"]
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # Resuming really continued: the weights moved after epoch 1.
    one = tmp_path / "c"
    train(_config(Task.MR_TO_CT, one, 1), subjects[:2], subjects[2:], progress=False)
    c = torch.load(one / "checkpoint.pt", weights_only=False)["family"]["modules"]["g"]
    assert any(not torch.equal(b[k], c[k]) for k in b)


def test_a_killed_session_keeps_its_time_and_the_resume_adds_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import models.training.loop as loop

    subjects = prepared(Task.MR_TO_CT, range(2))
    run = tmp_path / "run"
    real_validate, calls = loop.validate, []

    def validate_then_die(*args: object, **kwargs: object) -> float | None:
        calls.append(1)
        if len(calls) == 2:  # the session dies in epoch 2, after epoch 1's checkpoint
            raise KeyboardInterrupt
        return real_validate(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(loop, "validate", validate_then_die)
    with pytest.raises(KeyboardInterrupt):
        train(_config(Task.MR_TO_CT, run, 3), subjects[:1], subjects[1:], progress=False)
    killed = json.loads((run / "timing.json").read_text())
    assert [s["epochs"] for s in killed["sessions"]] == [1]
    first = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])["session_elapsed_s"]
    assert first <= killed["seconds_total"] + 0.05  # timing.json rounds to 0.1 s, metrics to 1 ms
    assert killed["seconds_total"] == killed["sessions"][0]["seconds"]
    monkeypatch.setattr(loop, "validate", real_validate)
    result = train(_config(Task.MR_TO_CT, run, 3), subjects[:1], subjects[1:], progress=False, resume=True)
    timing = json.loads((run / "timing.json").read_text())
    assert [s["epochs"] for s in timing["sessions"]] == [1, 2]
    assert timing["sessions"][0] == killed["sessions"][0]
    words = timing["sessions"][1]["machine"].split()
    assert words[0] == platform.machine() and len(words) == len(set(words))  # "x86_64", not "x86_64 x86_64"
    assert timing["sessions"][1]["seconds"] == pytest.approx(result.seconds, abs=0.1)
    assert timing["seconds_total"] == pytest.approx(sum(s["seconds"] for s in timing["sessions"]), abs=0.11)
    # A new run (no checkpoint to resume) does not inherit a timing.json left in its folder.
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "timing.json").write_text(json.dumps(killed))
    train(_config(Task.MR_TO_CT, tmp_path / "new", 1), subjects[:1], subjects[1:], progress=False)
    fresh = json.loads((tmp_path / "new" / "timing.json").read_text())
    assert [s["epochs"] for s in fresh["sessions"]] == [1]
    assert fresh["seconds_total"] == fresh["sessions"][0]["seconds"]


def test_a_session_killed_before_its_checkpoint_leaves_each_epoch_logged_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import models.training.loop as loop

    subjects = prepared(Task.MR_TO_CT, range(2))
    run = tmp_path / "run"
    real_save, checkpoints = loop._save, []

    def save_then_die(path: Path, payload: dict[str, object]) -> None:
        if path.name == "checkpoint.pt":
            checkpoints.append(1)
            if len(checkpoints) == 2:  # epoch 2's metrics line is written, its checkpoint is not
                raise KeyboardInterrupt
        real_save(path, payload)

    monkeypatch.setattr(loop, "_save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train(_config(Task.MR_TO_CT, run, 3), subjects[:1], subjects[1:], progress=False)
    epochs = [json.loads(x)["epoch"] for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2]
    monkeypatch.setattr(loop, "_save", real_save)
    train(_config(Task.MR_TO_CT, run, 3), subjects[:1], subjects[1:], progress=False, resume=True)
    epochs = [json.loads(x)["epoch"] for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2, 3]
    # A session killed while appending a line leaves it unfinished: the resume drops it and logs the
    # epoch again; a line that is not an epoch's record is named, and nothing is rewritten.
    metrics = run / "metrics.jsonl"
    metrics.write_text(metrics.read_text() + '{"epoch": 4, "val_m')
    train(_config(Task.MR_TO_CT, run, 4), subjects[:1], subjects[1:], progress=False, resume=True)
    assert [json.loads(x)["epoch"] for x in metrics.read_text().splitlines()] == [1, 2, 3, 4]
    broken = metrics.read_text().replace('{"epoch": 2', '{"epoch" 2', 1)
    metrics.write_text(broken)
    with pytest.raises(OptionError, match=r"line 2 of .*metrics.jsonl is not an epoch's record .*delete"):
        train(_config(Task.MR_TO_CT, run, 5), subjects[:1], subjects[1:], progress=False, resume=True)
    assert metrics.read_text() == broken
    # A new run does not append to a metrics.jsonl left in its folder.
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "metrics.jsonl").write_text((run / "metrics.jsonl").read_text())
    train(_config(Task.MR_TO_CT, tmp_path / "new", 1), subjects[:1], subjects[1:], progress=False)
    assert [
        json.loads(x)["epoch"] for x in (tmp_path / "new" / "metrics.jsonl").read_text().splitlines()
    ] == [1]


def test_existing_run_is_not_overwritten_and_resume_checks_options(tmp_path: Path) -> None:
    from service.inference.card import Task

    subjects = prepared(Task.MR_TO_CT, range(2))
    train(_config(Task.MR_TO_CT, tmp_path / "a", 1), subjects[:1], subjects[1:], progress=False)
    with pytest.raises(OptionError, match="pass --resume to continue that run"):
        train(_config(Task.MR_TO_CT, tmp_path / "a", 2), subjects[:1], subjects[1:], progress=False)
    other = TrainConfig(
        task=Task.MR_TO_CT, data=tmp_path, out=tmp_path / "a", epochs=2, steps_per_epoch=2, batch_size=4,
        crop_px=32, generator=TINY[Task.MR_TO_CT], threads=1, seed=3,
    )  # fmt: skip
    with pytest.raises(OptionError, match=r"there is no .* to continue: check --out, or drop --resume"):
        train(_config(Task.MR_TO_CT, tmp_path / "empty", 1), subjects[:1], subjects[1:], progress=False,
              resume=True)  # fmt: skip
    assert not (tmp_path / "empty" / "checkpoint.pt").exists()
    with pytest.raises(OptionError, match="use the same options or a new --out folder"):
        train(other, subjects[:1], subjects[1:], progress=False, resume=True)
    # A checkpoint that cannot be read is named, with the fix, and left as it was.
    ckpt = tmp_path / "a" / "checkpoint.pt"
    damaged = ckpt.read_bytes()[:-100]
    ckpt.write_bytes(damaged)
    with pytest.raises(OptionError, match=r"^--resume: .*checkpoint.pt is not a PyTorch file .*new --out"):
        train(_config(Task.MR_TO_CT, tmp_path / "a", 2), subjects[:1], subjects[1:], progress=False,
              resume=True)  # fmt: skip
    assert ckpt.read_bytes() == damaged


def test_crop_must_fit_the_network(tmp_path: Path) -> None:
    with pytest.raises(OptionError, match=r"crop_px must be a multiple of 4 .* use 36"):
        TrainConfig(
            task=Task.MR_TO_CT, data=tmp_path, out=tmp_path, crop_px=33, generator=TINY[next(iter(TINY))]
        )


def test_device_choice_is_checked_and_auto_falls_back_to_cpu(tmp_path: Path) -> None:
    from models.training.loop import resolve_device

    assert resolve_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        assert resolve_device("auto").type == "cpu"
        with pytest.raises(OptionError, match="no CUDA device: pass --device cpu or auto"):
            resolve_device("cuda")
    with pytest.raises(OptionError, match="device must be 'cpu', 'cuda' or 'auto'"):
        TrainConfig(task=Task.MR_TO_CT, data=tmp_path, out=tmp_path, device="tpu")


def test_learning_rate_is_constant_then_falls_linearly(tmp_path: Path) -> None:
    config = TrainConfig(task=Task.MR_TO_CT, data=tmp_path, out=tmp_path, epochs=5, decay_epochs=2, lr=1e-3)
    assert [config.lr_at(e) for e in range(5)] == pytest.approx([1e-3, 1e-3, 1e-3, 2e-3 / 3, 1e-3 / 3])
    constant = TrainConfig(task=Task.MR_TO_CT, data=tmp_path, out=tmp_path, epochs=5, lr=1e-3)
    assert {constant.lr_at(e) for e in range(5)} == {1e-3}
    with pytest.raises(OptionError, match=r"decay_epochs must be in \[0, epochs = 5\], got 6"):
        TrainConfig(task=Task.MR_TO_CT, data=tmp_path, out=tmp_path, epochs=5, decay_epochs=6)


def test_a_constant_rate_run_continues_into_decay_as_if_launched_with_it(tmp_path: Path) -> None:
    from service.inference.card import Task

    subjects = prepared(Task.CBCT_TO_CT, range(3))
    whole = tmp_path / "whole"
    train(_config(Task.CBCT_TO_CT, whole, 3, decay_epochs=2), subjects[:2], subjects[2:], progress=False)
    lines = [json.loads(x) for x in (whole / "metrics.jsonl").read_text().splitlines()]
    assert [r["lr"] for r in lines] == pytest.approx([2e-4, 2e-4 * 2 / 3, 2e-4 / 3])
    # One epoch at constant rate, then resumed with the decay: the same weights as the whole run.
    parts = tmp_path / "parts"
    train(_config(Task.CBCT_TO_CT, parts, 1), subjects[:2], subjects[2:], progress=False)
    train(_config(Task.CBCT_TO_CT, parts, 3, decay_epochs=2), subjects[:2], subjects[2:], progress=False,
          resume=True)  # fmt: skip
    a, b = _weights(whole), _weights(parts)
    assert all(torch.equal(a[k], b[k]) for k in a)
    # The decay changed the training: a constant-rate run of 3 epochs ends elsewhere.
    flat = tmp_path / "flat"
    train(_config(Task.CBCT_TO_CT, flat, 3), subjects[:2], subjects[2:], progress=False)
    c = _weights(flat)
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_resuming_with_another_rate_is_allowed_but_said(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from dataclasses import replace

    from service.inference.card import Task

    stopped = TrainConfig(task=Task.MR_TO_CT, data=tmp_path, out=tmp_path, epochs=60, lr=2e-4).to_dict()
    # A constant-rate run stopped after epoch 22 continues into a decay exactly ...
    decay = TrainConfig(task=Task.MR_TO_CT, data=tmp_path, out=tmp_path, epochs=30, decay_epochs=8, lr=2e-4)
    assert decay.schedule_agrees(stopped, 22)
    # ... but not at another rate, nor once its own decay had begun.
    assert not replace(decay, lr=5e-4).schedule_agrees(stopped, 22)
    decayed = TrainConfig(task=Task.MR_TO_CT, data=tmp_path, out=tmp_path, epochs=5, decay_epochs=2).to_dict()
    assert decayed["decay_epochs"] == 2 and not decay.schedule_agrees(decayed, 4)
    # The loop says so when it happens, and trains on.
    subjects = prepared(Task.MR_TO_CT, range(2))
    train(_config(Task.MR_TO_CT, tmp_path / "a", 1), subjects[:1], subjects[1:], progress=False)
    faster = replace(_config(Task.MR_TO_CT, tmp_path / "a", 2), lr=1e-3)
    with caplog.at_level("WARNING", logger="models.training.loop"):
        train(faster, subjects[:1], subjects[1:], progress=False, resume=True)
    assert "epochs 1-1 ran at learning rates other than this run's schedule" in caplog.text
    lines = [json.loads(x) for x in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    assert [r["lr"] for r in lines] == pytest.approx([2e-4, 1e-3])
