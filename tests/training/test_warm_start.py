"""``train --init-from``: a run starts at a parent run's networks (fresh optimisers); the card names it."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
import torch

from export.cli import _training_record
from models.networks import GeneratorSpec
from models.training.config import TrainConfig
from models.training.loop import train
from service.cli.main import main
from service.errors import OptionError
from service.inference.card import Task
from tests.training.conftest import TINY, prepared, write_pet_folder

REPOSITORY = Path(__file__).resolve().parents[2] / "models" / "repository"


def _config(out: Path, **kw: object) -> TrainConfig:
    base: dict[str, object] = dict(
        task=Task.PET_DENOISE, data=out, out=out, epochs=1, steps_per_epoch=2, batch_size=2, crop_px=32,
        generator=TINY[Task.PET_DENOISE], threads=1, seed=3, ema_decay=0.9,
    )  # fmt: skip
    base.update(kw)
    return TrainConfig(**base)  # type: ignore[arg-type]


def _state(path: Path) -> dict[str, object]:
    loaded: dict[str, object] = torch.load(path, weights_only=False)
    return loaded


@pytest.fixture(scope="module")
def parent(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished two-epoch PET run with a weight average (its checkpoint.pt)."""
    out = tmp_path_factory.mktemp("parent") / "run"
    subjects = prepared(Task.PET_DENOISE, range(2))
    train(_config(out, epochs=2), subjects[:1], subjects[1:], progress=False)
    return out / "checkpoint.pt"


def test_the_child_starts_at_the_parents_networks_and_average_with_fresh_optimisers(
    parent: Path, tmp_path: Path
) -> None:
    subjects = prepared(Task.PET_DENOISE, range(2))
    # A learning rate of 1e-12 leaves the weights where they started, so the child's weights after its
    # epoch show where it started: at the parent's.
    train(_config(tmp_path / "child", lr=1e-12, init_from=parent), subjects[:1], subjects[1:], progress=False)
    train(_config(tmp_path / "fresh", lr=1e-12), subjects[:1], subjects[1:], progress=False)
    mother, child, fresh = (
        _state(p)
        for p in (parent, tmp_path / "child" / "checkpoint.pt", tmp_path / "fresh" / "checkpoint.pt")
    )
    for net in ("g", "d"):
        theirs = mother["family"]["modules"][net]  # type: ignore[index]
        mine = child["family"]["modules"][net]  # type: ignore[index]
        new = fresh["family"]["modules"][net]  # type: ignore[index]
        params = [k for k, v in theirs.items() if v.is_floating_point() and "running" not in k]
        assert params
        assert all(torch.allclose(mine[k], theirs[k], atol=1e-6) for k in params)
        assert not all(torch.allclose(new[k], theirs[k], atol=1e-6) for k in params)
    # The average continues from the parent's average (decay 0.9 over 2 steps of unchanged weights).
    avg_parent = mother["ema"]["module"]  # type: ignore[index]
    avg_child = child["ema"]["module"]  # type: ignore[index]
    weights = mother["family"]["modules"]["g"]  # type: ignore[index]
    key = next(k for k, v in avg_parent.items() if v.is_floating_point() and "running" not in k)
    expected = 0.81 * avg_parent[key] + 0.19 * weights[key]
    assert torch.allclose(avg_child[key], expected, atol=1e-6)
    # Fresh optimisers: Adam has counted the child's 2 steps, not the parent's 4 as well.
    steps = {float(s["step"]) for s in child["family"]["optimisers"]["g"]["state"].values()}  # type: ignore[index]
    assert steps == {2.0}
    assert child["epoch"] == 1


def test_the_parent_is_recorded_in_the_checkpoint_best_and_card(parent: Path, tmp_path: Path) -> None:
    subjects = prepared(Task.PET_DENOISE, range(2))
    out = tmp_path / "child"
    train(_config(out, init_from=parent), subjects[:1], subjects[1:], progress=False)
    best = _state(out / "best.pt")
    record = _training_record(out, best)["initialised_from"]
    assert record["sha256"] == hashlib.sha256(parent.read_bytes()).hexdigest()
    assert record["epoch"] == 2 and record["config"]["epochs"] == 2
    assert record["timing"]["seconds_total"] > 0
    assert _state(out / "checkpoint.pt")["init"] == record
    assert best["config"]["init_from"] == str(parent)  # type: ignore[index]
    # A run without a parent records none.
    train(_config(tmp_path / "plain"), subjects[:1], subjects[1:], progress=False)
    assert "initialised_from" not in _training_record(
        tmp_path / "plain", _state(tmp_path / "plain" / "best.pt")
    )


def test_a_resumed_warm_start_keeps_its_parent_and_refuses_another(parent: Path, tmp_path: Path) -> None:
    subjects = prepared(Task.PET_DENOISE, range(2))
    out = tmp_path / "child"
    train(_config(out, init_from=parent), subjects[:1], subjects[1:], progress=False)
    recorded = _state(out / "checkpoint.pt")["init"]
    train(_config(out, epochs=2), subjects[:1], subjects[1:], progress=False, resume=True)
    assert _state(out / "checkpoint.pt")["init"] == recorded
    train(_config(out, epochs=3, init_from=parent), subjects[:1], subjects[1:], progress=False, resume=True)
    with pytest.raises(OptionError, match=r"missing.pt: no such file: drop --init-from when resuming"):
        train(
            _config(out, epochs=4, init_from=tmp_path / "missing.pt"), subjects[:1], subjects[1:],
            progress=False, resume=True,
        )  # fmt: skip
    other = tmp_path / "other.pt"
    other.write_bytes(parent.read_bytes() + b"\0")
    with pytest.raises(OptionError, match=r"was started from parent .*drop --init-from when resuming"):
        train(
            _config(out, epochs=4, init_from=other), subjects[:1], subjects[1:], progress=False, resume=True
        )


def test_a_parent_that_cannot_seed_the_run_is_refused_with_the_fix(parent: Path, tmp_path: Path) -> None:
    subjects = prepared(Task.PET_DENOISE, range(2))

    def start(init: Path, **kw: object) -> None:
        train(_config(tmp_path / "child", init_from=init, **kw), subjects[:1], subjects[1:], progress=False)

    with pytest.raises(OptionError, match=r"is not a file: pass the checkpoint.pt"):
        start(tmp_path / "missing.pt")
    with pytest.raises(OptionError, match=r"is not a file: pass the checkpoint.pt or best.pt"):
        start(tmp_path / "missing.pt")
    other = tmp_path / "dict.pt"
    torch.save({"weights": 1}, other)
    with pytest.raises(OptionError, match=r"dict.pt is not a training checkpoint: pass the checkpoint.pt"):
        start(other)
    shipped = REPOSITORY / "pet_denoise_brain_drf10" / "6" / "model.onnx"
    with pytest.raises(OptionError, match=r"^--init-from: .*model.onnx is an ONNX model .*run.s folder"):
        start(shipped)
    cut = tmp_path / "cut.pt"
    cut.write_bytes(parent.read_bytes()[:1000])  # a copy that stopped part way
    with pytest.raises(OptionError, match=r"cut.pt is not a PyTorch file \(\w+\): pass the checkpoint.pt"):
        start(cut)
    listed = tmp_path / "list.pt"
    torch.save([1, 2], listed)
    with pytest.raises(OptionError, match=r"list.pt holds a list, not a radtranslate checkpoint"):
        start(listed)
    wider = GeneratorSpec.from_dict({**TINY[Task.PET_DENOISE].to_dict(), "channels": [8, 16, 64]})
    for path in (parent, parent.parent / "best.pt"):
        with pytest.raises(OptionError, match=r"was trained with generator .*same --task and generator"):
            start(path, generator=wider)
    mr_best = tmp_path / "mr" / "best.pt"
    mr = prepared(Task.MR_TO_CT, range(2))
    train(
        _config(mr_best.parent, task=Task.MR_TO_CT, generator=TINY[Task.MR_TO_CT]),
        mr[:1],
        mr[1:],
        progress=False,
    )
    with pytest.raises(
        OptionError, match=r"was trained with task 'mr-to-ct', this run asks for 'pet-denoise'"
    ):
        start(mr_best)
    # Weights that do not fit the networks (another code version's file, or an edited one): refused
    # with the fix before the run writes anything, not a load_state_dict traceback.
    best = _state(parent.parent / "best.pt")
    state = dict(best["state"])  # type: ignore[call-overload]
    state.pop(next(iter(state)))
    torch.save({**best, "state": state}, tmp_path / "edited_best.pt")
    with pytest.raises(OptionError, match=r"edited_best.pt: its served generator does not load .*Missing"):
        start(tmp_path / "edited_best.pt")
    mother: dict[str, Any] = torch.load(parent, weights_only=False)
    only_g = {**mother["family"], "modules": {"g": mother["family"]["modules"]["g"]}}
    torch.save({**mother, "family": only_g}, tmp_path / "no_d.pt")
    with pytest.raises(
        OptionError, match=r"no_d.pt has no network 'd' \(it holds g\): pass the checkpoint.pt"
    ):
        start(tmp_path / "no_d.pt")
    assert not (tmp_path / "child").exists()


def test_cli_init_from_starts_the_run_at_the_parent_or_names_the_mismatch(
    parent: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_pet_folder(tmp_path / "data", range(2))
    args = [
        "train", "--task", "pet-denoise", "--data", str(data), "--epochs", "1", "--steps-per-epoch", "1",
        "--batch-size", "2", "--crop-px", "32", "--context-slices", "3", "--threads", "1", "--seed", "3",
        "--val-fraction", "0.5", "--ema-decay", "0.9", "--no-progress", "--init-from", str(parent),
    ]  # fmt: skip
    assert main([*args, "--out", str(tmp_path / "a"), "--channels", "8,16,32"]) == 0
    init = _state(tmp_path / "a" / "checkpoint.pt")["init"]
    assert init["sha256"] == hashlib.sha256(parent.read_bytes()).hexdigest()  # type: ignore[index]
    assert main([*args, "--out", str(tmp_path / "b"), "--channels", "8,16,64"]) != 0
    assert "was trained with generator" in capsys.readouterr().err


def test_a_best_pt_seeds_the_served_generator_and_average_and_leaves_the_rest_fresh(
    parent: Path, tmp_path: Path
) -> None:
    """``--init-from RUN/best.pt``: the generator and the average start at best.pt's weights (the
    parent's average at its best epoch); the discriminator starts where a run without a parent does."""
    subjects = prepared(Task.PET_DENOISE, range(2))
    best_path = parent.parent / "best.pt"
    best = _state(best_path)["state"]
    kw: dict[str, object] = dict(lr=1e-12)
    train(_config(tmp_path / "child", init_from=best_path, **kw), subjects[:1], subjects[1:], progress=False)
    train(_config(tmp_path / "fresh", **kw), subjects[:1], subjects[1:], progress=False)
    child, fresh = (_state(tmp_path / name / "checkpoint.pt") for name in ("child", "fresh"))
    mother = _state(parent)
    g = child["family"]["modules"]["g"]  # type: ignore[index]
    params = [k for k, v in best.items() if v.is_floating_point() and "running" not in k]  # type: ignore[attr-defined]
    assert params and all(torch.allclose(g[k], best[k], atol=1e-6) for k in params)  # type: ignore[index]
    # best.pt is the parent's average, not its last weights: the child did not take those.
    last = mother["family"]["modules"]["g"]  # type: ignore[index]
    assert not all(torch.allclose(g[k], last[k], atol=1e-6) for k in params)
    avg = child["ema"]["module"]  # type: ignore[index]
    assert all(torch.allclose(avg[k], best[k], atol=1e-6) for k in params)  # type: ignore[index]
    d, d_fresh, d_parent = (s["family"]["modules"]["d"] for s in (child, fresh, mother))  # type: ignore[index]
    weights = [k for k in d if d[k].is_floating_point() and "running" not in k]
    assert weights and all(torch.allclose(d[k], d_fresh[k], atol=1e-6) for k in weights)
    assert not all(torch.allclose(d[k], d_parent[k], atol=1e-6) for k in weights)
    record = child["init"]
    assert record["networks"] == "served generator" and record["epoch"] == _state(best_path)["epoch"]  # type: ignore[index]
    assert record["sha256"] == hashlib.sha256(best_path.read_bytes()).hexdigest()  # type: ignore[index]
    assert record["config"]["epochs"] == 2  # type: ignore[index]
    assert _state(tmp_path / "child" / "best.pt")["init"] == record
    # A child of the checkpoint records that it took every network.
    train(_config(tmp_path / "all", init_from=parent), subjects[:1], subjects[1:], progress=False)
    assert _state(tmp_path / "all" / "checkpoint.pt")["init"]["networks"] == "all"  # type: ignore[index]


def test_a_cyclegan_best_pt_seeds_the_cbct_to_ct_generator_only(tmp_path: Path) -> None:
    """The CycleGAN serves G_ab (CBCT→CT) inside a centre-slice wrapper: best.pt loads into it, and
    G_ba (CT→CBCT) and both discriminators start fresh."""
    subjects = prepared(Task.CBCT_TO_CT, range(2))
    kw: dict[str, object] = dict(task=Task.CBCT_TO_CT, generator=TINY[Task.CBCT_TO_CT], ema_decay=0.0)
    train(_config(tmp_path / "parent", epochs=2, **kw), subjects[:1], subjects[1:], progress=False)
    best_path = tmp_path / "parent" / "best.pt"
    best = _state(best_path)["state"]
    kw["lr"] = 1e-12
    train(_config(tmp_path / "child", init_from=best_path, **kw), subjects[:1], subjects[1:], progress=False)
    train(_config(tmp_path / "fresh", **kw), subjects[:1], subjects[1:], progress=False)
    child, fresh = (_state(tmp_path / n / "checkpoint.pt")["family"]["modules"] for n in ("child", "fresh"))  # type: ignore[index]
    g_ab = child["g_ab"]
    served = {k.removeprefix("body."): v for k, v in best.items()}  # type: ignore[attr-defined]
    assert set(served) == set(g_ab)
    floats = [k for k, v in served.items() if v.is_floating_point() and "running" not in k]
    assert floats and all(torch.allclose(g_ab[k], served[k], atol=1e-6) for k in floats)
    assert not all(torch.allclose(fresh["g_ab"][k], served[k], atol=1e-6) for k in floats)
    for name in ("g_ba", "d_a", "d_b"):
        weights = [k for k, v in child[name].items() if v.is_floating_point() and "running" not in k]
        assert weights and all(torch.allclose(child[name][k], fresh[name][k], atol=1e-6) for k in weights)
