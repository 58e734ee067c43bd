"""``radtranslate score``: a shipped model's card metrics on a paired folder, through the serving engine."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from models.simulation.anatomy import Site
from models.simulation.dataset import DatasetOptions, Task, write_dataset
from service.cli.main import EXIT_INPUT, EXIT_NOT_FOUND, main
from service.inference.repository import ModelRepository, default_repository_path

REPOSITORY = default_repository_path()
#: The earlier of the MR brain model's versions kept in the repository (pinned with --version).
EARLIER = str(
    min(
        int(e.card.version)
        for e in ModelRepository.load(REPOSITORY).entries()
        if e.card.name == "mr_to_ct_brain"
    )
)


def _card(name: str, version: str | None = None) -> dict[str, Any]:
    path = REPOSITORY / name / (version or "") / "card.json"
    data: dict[str, Any] = json.loads(path.read_text())
    return data


@pytest.fixture(scope="module")
def mr_held_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Subject 0 of the shipped MR card's held-out set, written as simulate writes it."""
    test_set = _card("mr_to_ct_brain")["metrics"]["test_dataset"]
    root = tmp_path_factory.mktemp("score") / "test"
    options = DatasetOptions(task=Task.MR_TO_CT, site=Site.BRAIN, subjects=1, seed=test_set["seed"])
    write_dataset(root, options)
    return root


def _score(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    assert main(["score", *args]) == 0
    out: dict[str, Any] = json.loads(capsys.readouterr().out)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("version", [None, EARLIER])
def test_score_reproduces_the_cards_held_out_figures(
    mr_held_out: Path, capsys: pytest.CaptureFixture[str], version: str | None
) -> None:
    args = ["--model", "mr_to_ct_brain", "--data", str(mr_held_out)]
    out = _score(capsys, *args, *(["--version", version] if version else []))
    card = _card("mr_to_ct_brain", version)
    assert out["version"] == card["version"]
    held_out = card["metrics"]["held_out"]
    assert out["subjects"] == ["1BS0000"] == held_out["subjects"][:1]
    for key, value in out["per_subject"][0].items():
        assert value == pytest.approx(held_out["per_subject"][0][key], rel=2e-3, abs=0.05), key
    assert out["mean"]["mae_hu"] == pytest.approx(out["per_subject"][0]["mae_hu"], abs=1e-3)
    assert out["target"] == card["metrics"]["target"]
    assert out["target_met"] is (out["mean"]["mae_hu"] <= 60.0)
    assert out["card_held_out_mean"] == held_out["mean"]
    assert out["same_subjects_as"] == ["held-out set"]  # the card's own subjects, said so


def test_score_refusals_name_what_is_wrong(
    mr_held_out: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["score", "--model", "no_such_model", "--data", str(mr_held_out)]) == EXIT_NOT_FOUND
    assert "no_such_model" in capsys.readouterr().err
    missing = tmp_path / "absent"
    assert main(["score", "--model", "mr_to_ct_brain", "--data", str(missing)]) == EXIT_INPUT
    assert f"dataset folder {str(missing)!r} does not exist: check the path" in capsys.readouterr().err
    # a PET model needs the low-dose image at its own dose-reduction factor, which an MR folder lacks
    pet = "pet_denoise_brain_drf10"
    assert main(["score", "--model", pet, "--data", str(mr_held_out)]) == EXIT_INPUT
    err = capsys.readouterr().err
    assert "1BS0000" in err and "lacks pet_full" in err


def test_a_pet_card_with_a_fractional_dose_reduction_factor_is_refused_not_rounded() -> None:
    import dataclasses

    from export.score import preset_for
    from service.errors import InputError
    from service.inference.engine import Engine
    from service.inference.repository import default_repository_path

    card = Engine(default_repository_path()).get_model("pet_denoise_brain_drf10")
    assert preset_for(card).dataset_input == "pet_low_drf10"
    message = r"dose_reduction_factor 2.5, but dataset folders name .* \(pet_low_drfN\)"
    with pytest.raises(InputError, match=message):
        preset_for(dataclasses.replace(card, dose_reduction_factor=2.5))


def test_same_subjects_as_names_the_cards_sets_the_folder_repeats(tmp_path: Path) -> None:
    from export.score import same_subjects_as

    def folder(name: str, **dataset: object) -> Path:
        path = tmp_path / name
        path.mkdir()
        (path / "dataset.json").write_text(json.dumps(dataset))
        return path

    doc = {
        "training": {"dataset": {"seed": 1, "task": "pet", "site": "brain"}},
        "metrics": {
            "test_dataset": {"seed": 1001, "task": "pet", "site": "brain"},
            "confirmation": {"test_dataset": {"seed": 2001, "task": "pet", "site": "brain", "labels": True}},
        },
    }
    assert same_subjects_as(doc, folder("a", seed=1, task="pet", site="brain", downscale=2)) == [
        "training set"
    ]
    assert same_subjects_as(doc, folder("b", seed=1001, task="pet", site="brain")) == ["held-out set"]
    assert same_subjects_as(doc, folder("c", seed=2001, task="pet", site="brain")) == ["confirmation set"]
    assert same_subjects_as(doc, folder("d", seed=1001, task="pet", site="pelvis")) == []
    assert same_subjects_as(doc, folder("e", seed=7, task="pet", site="brain")) == []
    assert same_subjects_as(doc, tmp_path / "no_dataset_json") == []
    assert same_subjects_as({}, folder("f", seed=1001, task="pet", site="brain")) == []


@pytest.mark.slow
def test_scoring_on_the_training_subjects_says_it_is_no_test(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trained_on = _card("mr_to_ct_pelvis")["training"]["dataset"]
    root = tmp_path / "train_again"
    options = DatasetOptions(
        task=Task.MR_TO_CT, site=Site.PELVIS, subjects=1, seed=trained_on["seed"], downscale=4
    )
    write_dataset(root, options)
    assert main(["score", "--model", "mr_to_ct_pelvis", "--data", str(root)]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["same_subjects_as"] == ["training set"]
    assert "holds the subjects this model was trained on" in captured.err
