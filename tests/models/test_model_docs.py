"""docs/models.md is generated from the cards (stale docs fail), and its error budget adds up."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.training.warm_start import ALL_NETWORKS, SERVED_GENERATOR
from service.inference.repository import default_repository_path
from tools.model_docs import _flips_line, _parents_line, error_budget, render_all

ROOT = Path(__file__).resolve().parents[2]
REPOSITORY = default_repository_path()
CARDS = sorted(REPOSITORY.glob("*/*/card.json"))


def test_models_doc_is_what_the_cards_render() -> None:
    assert (ROOT / "docs" / "models.md").read_text() == render_all(REPOSITORY), (
        "docs/models.md is stale: run python tools/model_docs.py"
    )


@pytest.mark.parametrize("card_path", CARDS, ids=[f"{p.parents[1].name}-v{p.parent.name}" for p in CARDS])
def test_error_budget_adds_up_to_the_body_mae(card_path: Path) -> None:
    held_out = json.loads(card_path.read_text())["metrics"]["held_out"]
    if "mae_hu" not in held_out["mean"]:
        pytest.skip("PET card: no HU bands")
    for prefix in ("", "input_"):
        if f"{prefix}mae_hu" not in held_out["mean"]:
            continue
        budget = error_budget(held_out["per_subject"], prefix)
        assert sum(share for share, _ in budget.values()) == pytest.approx(100.0, abs=1e-6)
        assert sum(part for _, part in budget.values()) == pytest.approx(
            held_out["mean"][f"{prefix}mae_hu"], abs=0.01
        )
        assert budget["bone"][1] > 0 and budget["soft_tissue"][1] > 0


def test_error_budget_of_an_empty_band_is_zero() -> None:
    row = {
        "mask_voxels": 10.0, "voxels_band_bone": 0.0, "mae_band_hu_bone": float("nan"),
        "voxels_band_soft_tissue": 10.0, "mae_band_hu_soft_tissue": 20.0,
    }  # fmt: skip
    budget = error_budget([row])
    assert budget["bone"] == (0.0, 0.0) and budget["soft_tissue"] == (100.0, 20.0) and "air" not in budget


def test_a_warm_started_card_names_its_chain_of_parents_and_the_time_of_all() -> None:
    grandparent = {"epoch": 90, "sha256": "a" * 64, "config": {"lr": 5e-4, "epochs": 90, "decay_epochs": 45},
                   "timing": {"seconds_total": 100.0}}  # fmt: skip
    parent = {"epoch": 150, "sha256": "b" * 64, "config": {"lr": 5e-4, "epochs": 150, "decay_epochs": 75},
              "timing": {"seconds_total": 200.5}, "init": grandparent}  # fmt: skip
    line = _parents_line({"timing": {"seconds_total": 50.0}, "initialised_from": parent})
    assert line == (
        "- warm start from epoch 150 of a run with learning rate 0.0005, linear decay over the last 75 "
        "of 150 epochs (200.5 s; checkpoint sha256 bbbbbbbbbbbb); that from epoch 90 of a run with "
        "learning rate 0.0005, linear decay over the last 45 of 90 epochs (100.0 s; checkpoint sha256 "
        "aaaaaaaaaaaa); 350.5 s wall in all"
    )
    assert _parents_line({"timing": {"seconds_total": 50.0}}) is None


def test_a_parent_best_pt_is_named_as_the_served_generator_and_a_checkpoint_as_an_epoch() -> None:
    """The records ``train --init-from`` writes (``networks``: warm_start's two values)."""
    checkpoint = {
        "epoch": 44, "sha256": "c" * 64, "networks": ALL_NETWORKS, "timing": {"seconds_total": 10.0},
        "config": {"lr": 5e-4, "epochs": 44, "decay_epochs": 18},
    }  # fmt: skip
    best = {
        "epoch": 23, "sha256": "d" * 64, "networks": SERVED_GENERATOR, "timing": {"seconds_total": 20.0},
        "config": {"lr": 2.5e-4, "epochs": 23, "decay_epochs": 21}, "init": checkpoint,
    }  # fmt: skip
    line = _parents_line({"timing": {"seconds_total": 5.0}, "initialised_from": best})
    assert line == (
        "- warm start from the served generator of epoch 23 (best.pt) of a run with learning rate 0.00025, "
        "linear decay over the last 21 of 23 epochs (20.0 s; best.pt sha256 dddddddddddd); that from "
        "epoch 44 of a run with learning rate 0.0005, linear decay over the last 18 of 44 epochs "
        "(10.0 s; checkpoint sha256 cccccccccccc); 35.0 s wall in all"
    )


def test_the_page_says_which_shipped_versions_average_flips() -> None:
    """A served graph with flips costs 2-4 generator passes a slice: the page says so for those cards
    and only for them (older cards have no ``flips`` record, export of a single pass records ``none``)."""
    for card_path in CARDS:
        card = json.loads(card_path.read_text())
        flips = card["architecture"].get("flips", {"mode": "none"})
        line = _flips_line(card["architecture"])
        if flips["mode"] == "none":
            assert line is None
        else:
            assert line is not None and f"--flips {flips['mode']}" in line
            assert f"{flips['passes']} generator passes per slice" in line
    assert _flips_line({"flips": {"mode": "none", "passes": 1}}) is None
    assert "width-axis mirror" in str(_flips_line({"flips": {"mode": "x", "passes": 2}}))
