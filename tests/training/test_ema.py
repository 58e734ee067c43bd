"""The weight average (``--ema-decay``): exact arithmetic, no effect on training, exact resume."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from models.training.config import TrainConfig
from models.training.ema import WeightAverage
from models.training.loop import train
from service.errors import OptionError
from service.inference.card import Task
from tests.training.conftest import TINY, prepared


def test_average_follows_the_ema_formula_and_copies_counters() -> None:
    net = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    average = WeightAverage(net, 0.75)
    start = {k: v.clone() for k, v in net.state_dict().items()}
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
    net.train()
    net(torch.randn(4, 2))  # moves the running statistics and the batch counter
    average.update(net)
    now = net.state_dict()
    for key, value in average.module.state_dict().items():
        if value.is_floating_point():
            torch.testing.assert_close(value, 0.75 * start[key] + 0.25 * now[key])
        else:
            assert torch.equal(value, now[key]), key
    assert all(not p.requires_grad for p in average.module.parameters())


def test_average_refuses_bad_decay_and_other_structures() -> None:
    with pytest.raises(OptionError, match=r"ema_decay must be in \[0, 1\), got 1.0: pass e.g. 0.998"):
        WeightAverage(nn.Linear(2, 2), 1.0)
    with pytest.raises(ValueError, match="structure differs"):
        WeightAverage(nn.Linear(2, 2), 0.5).update(nn.Linear(2, 3, bias=False))
    with pytest.raises(OptionError, match=r"ema_decay must be in \[0, 1\), got -0.1"):
        TrainConfig(task=Task.MR_TO_CT, data=Path("."), out=Path("."), ema_decay=-0.1)


def _config(out: Path, epochs: int, ema: float) -> TrainConfig:
    return TrainConfig(
        task=Task.CBCT_TO_CT, data=out, out=out, epochs=epochs, steps_per_epoch=2, batch_size=2, crop_px=32,
        generator=TINY[Task.CBCT_TO_CT], threads=1, seed=3, ema_decay=ema, paired_l1=100.0,
    )  # fmt: skip


def _state(run: Path) -> dict[str, Any]:
    state: dict[str, Any] = torch.load(run / "checkpoint.pt", weights_only=False)
    return state


def test_average_changes_what_is_validated_not_what_is_trained(tmp_path: Path) -> None:
    subjects = prepared(Task.CBCT_TO_CT, range(3))
    plain, averaged = tmp_path / "plain", tmp_path / "ema"
    train(_config(plain, 2, 0.0), subjects[:2], subjects[2:], progress=False)
    train(_config(averaged, 2, 0.5), subjects[:2], subjects[2:], progress=False)
    a, b = _state(plain), _state(averaged)
    # The trained networks are bit for bit those of the run without an average.
    for net, weights in a["family"]["modules"].items():
        assert all(torch.equal(w, b["family"]["modules"][net][k]) for k, w in weights.items())
    assert "ema" not in a and b["ema"]["decay"] == 0.5
    # What is validated and exported is the average, which is not the trained generator.
    best = torch.load(averaged / "best.pt", weights_only=False)["state"]
    g_ab = b["family"]["modules"]["g_ab"]
    assert any(not torch.equal(best[f"body.{k}"], w) for k, w in g_ab.items() if w.is_floating_point())
    val = [json.loads(x)["val_mae"] for x in (averaged / "metrics.jsonl").read_text().splitlines()]
    val_plain = [json.loads(x)["val_mae"] for x in (plain / "metrics.jsonl").read_text().splitlines()]
    assert val != val_plain


def test_average_resumes_exactly_and_may_not_change_on_resume(tmp_path: Path) -> None:
    subjects = prepared(Task.CBCT_TO_CT, range(3))
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    train(_config(whole, 2, 0.5), subjects[:2], subjects[2:], progress=False)
    train(_config(parts, 1, 0.5), subjects[:2], subjects[2:], progress=False)
    with pytest.raises(OptionError, match="use the same options or a new --out folder"):
        train(replace(_config(parts, 2, 0.5), ema_decay=0.9), subjects[:2], subjects[2:], progress=False,
              resume=True)  # fmt: skip
    train(_config(parts, 2, 0.5), subjects[:2], subjects[2:], progress=False, resume=True)
    a, b = _state(whole)["ema"]["module"], _state(parts)["ema"]["module"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
