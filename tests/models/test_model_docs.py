"""docs/models.md is generated from the cards (stale docs fail), and its error budget adds up."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.inference.repository import default_repository_path
from tools.model_docs import error_budget, render_all

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
