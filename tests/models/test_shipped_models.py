"""The shipped models: every card's held-out figures are reproduced by running the shipped ONNX model
through the serving engine on the same held-out simulated subjects; the product targets are checked.

Held-out subjects are re-simulated from the card's test-set seed (subject i depends only on
(seed, task, site, i)), so the test needs no stored data and also proves the card reproducible.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from export.evaluate import TARGETS, Evaluation, evaluate_ct, evaluate_pet, meets_target
from export.repository import config_channels
from export.score import preset_for
from models.simulation.dataset import DatasetOptions, simulate_subject
from models.simulation.loader import Subject
from service.inference.card import Task
from service.inference.engine import Engine
from service.inference.repository import ModelRepository, default_repository_path
from service.inference.triton_config import check_config, render_config

REPOSITORY = default_repository_path()
CARDS = sorted(REPOSITORY.glob("*/card.json")) if REPOSITORY.is_dir() else []
SUBJECTS_CHECKED = 2


def _card(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _evaluate(card: dict[str, Any], n: int, test_set: dict[str, Any]) -> Evaluation:
    """Re-simulate the first ``n`` subjects of ``test_set`` (a card's ``dataset.json``) and score them."""
    task = Task.parse(card["task"])
    preset = preset_for(Engine(REPOSITORY).get_model(card["name"]))
    options = DatasetOptions(
        task=test_set["task"], site=test_set["site"], subjects=n, seed=test_set["seed"],
        drfs=tuple(test_set["drfs"]) if test_set.get("drfs") else (4, 10, 20, 50, 100),
        cbct_oversample=int(test_set.get("cbct_oversample", 1)),
    )  # fmt: skip
    subjects = []
    for i in range(n):
        sim = simulate_subject(options, i)
        subjects.append(Subject(sim.name, Path("."), sim.images, sim.mask.array > 0.5))
    engine = Engine(REPOSITORY)
    if task is Task.PET_DENOISE:
        return evaluate_pet(engine, card["name"], subjects, preset)
    return evaluate_ct(engine, card["name"], subjects, preset)


def test_the_repository_ships_an_mr_to_ct_model_within_size() -> None:
    repository = ModelRepository.load(REPOSITORY)
    assert any(entry.card.task is Task.MR_TO_CT for entry in repository.entries())
    for entry in repository.entries():
        assert entry.model_path.stat().st_size <= 30 * 2**20
        for field in ("architecture", "training_data", "training", "metrics", "intended_use", "limitations"):
            assert field in entry.card.documentation, (entry.card.name, field)


def test_the_repository_keeps_the_two_latest_versions_of_each_model() -> None:
    """Retention (docs/model_repository.md): the served version and the one before it; older versions
    stay in git history, at the commit the retention note names."""
    versions: dict[str, list[int]] = {}
    for entry in ModelRepository.load(REPOSITORY).entries():
        versions.setdefault(entry.card.name, []).append(int(entry.card.version))
    assert versions
    for name, numbers in versions.items():
        assert len(numbers) <= 2, f"{name} keeps versions {sorted(numbers)}: remove all but the two latest"


DOCS = sorted((Path(__file__).resolve().parents[2] / "models" / "cards").glob("*.doc.json"))


@pytest.mark.parametrize("doc_path", DOCS, ids=[p.name.removesuffix(".doc.json") for p in DOCS])
def test_the_served_card_carries_its_doc_as_export_merges_it(doc_path: Path) -> None:
    """A card's text is edited in ``models/cards/NAME.doc.json`` and merged by ``export --doc``; an edit
    made to the card alone (or to the doc alone) would leave the shipped card unreproducible."""
    name = doc_path.name.removesuffix(".doc.json")
    doc = json.loads(doc_path.read_text(encoding="utf-8"))
    served = REPOSITORY / name / "card.json"
    card = _card(served)
    for key, value in doc.items():
        if key == "architecture":  # export adds family, generator and flips beside the doc's keys
            for sub, text in value.items():
                assert card[key].get(sub) == text, f"{served}: architecture.{sub} differs from {doc_path}"
        else:
            assert card.get(key) == value, f"{served}: {key} differs from {doc_path}"
    # The model folder's card.json is its newest version's, byte for byte.
    assert served.read_bytes() == (REPOSITORY / name / card["version"] / "card.json").read_bytes()


def test_each_config_pbtxt_is_what_export_writes_for_the_versions_kept() -> None:
    """Removing a version (retention) can leave a config written for the versions that were there:
    its channel dimension must be the kept versions' common context slices, or -1 if they differ."""
    slices: dict[str, set[int]] = {}
    for entry in ModelRepository.load(REPOSITORY).entries():
        slices.setdefault(entry.card.name, set()).add(entry.card.context_slices)
    assert slices
    for name, kept in slices.items():
        path = REPOSITORY / name / "config.pbtxt"
        channels = config_channels(kept)
        batch = check_config(path, model_name=name, channels=channels).max_batch_size
        expected = render_config(name, channels, max_batch_size=batch)
        assert path.read_text(encoding="utf-8") == expected, (
            f"{path} is not what export writes for versions with {sorted(kept)} context slices: "
            f"write render_config({name!r}, {channels}, max_batch_size={batch}) to it"
        )


@pytest.mark.slow
@pytest.mark.parametrize("card_path", CARDS, ids=[p.parent.name for p in CARDS])
def test_card_figures_are_reproduced_by_the_shipped_model(card_path: Path) -> None:
    card = _card(card_path)
    held_out = card["metrics"]["held_out"]
    result = _evaluate(card, SUBJECTS_CHECKED, card["metrics"]["test_dataset"])
    _assert_reproduced(result, held_out)
    assert np.isfinite(list(held_out["mean"].values())).all()


def _assert_reproduced(result: Evaluation, recorded: dict[str, Any]) -> None:
    assert result.subjects, "no subject was re-simulated: the comparison below would pass on nothing"
    for i, name in enumerate(result.subjects):
        j = recorded["subjects"].index(name)
        for key, value in result.per_subject[i].items():
            want = recorded["per_subject"][j][key]
            assert value == pytest.approx(want, rel=2e-3, abs=0.05, nan_ok=True), (name, key)


CONFIRMED = [p for p in CARDS if "confirmation" in _card(p)["metrics"]]


@pytest.mark.slow
@pytest.mark.parametrize("card_path", CONFIRMED, ids=[p.parent.name for p in CONFIRMED])
def test_confirmation_figures_are_reproduced_and_come_from_other_subjects(card_path: Path) -> None:
    card = _card(card_path)
    confirmation, held_out_set = card["metrics"]["confirmation"], card["metrics"]["test_dataset"]
    assert confirmation["test_dataset"]["seed"] != held_out_set["seed"]
    assert confirmation["test_dataset"]["seed"] != card["training"]["dataset"]["seed"]  # recorded at export
    _assert_reproduced(_evaluate(card, 1, confirmation["test_dataset"]), confirmation)
    assert confirmation["target_met"] is meets_target(card["task"], confirmation["mean"])


@pytest.mark.parametrize("card_path", CARDS, ids=[p.parent.name for p in CARDS])
def test_card_states_whether_the_target_is_met(card_path: Path) -> None:
    """The card's own verdict must match its figures; the target itself is reported, not assumed."""
    card = _card(card_path)
    met = meets_target(card["task"], card["metrics"]["held_out"]["mean"])
    assert card["metrics"]["target"] == TARGETS[card["task"]]
    assert card["metrics"]["target_met"] is met
