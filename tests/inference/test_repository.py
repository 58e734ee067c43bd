"""Model cards, Triton configs and repositories: validation names the file and field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from service.errors import InputError, NotFoundError
from service.inference import CardError, ModelRepository, RepositoryError, default_repository_path, parse_card
from service.inference.repository import REPOSITORY_ENV
from service.inference.triton_config import ConfigError, check_config, parse_pbtxt, render_config
from tests.inference.helpers import CT_CARD, card, linear_model, write_model


def build(path: Path) -> None:
    linear_model(path, 1, 1.0, 0.0)


def test_a_valid_card_parses_into_typed_fields() -> None:
    parsed = parse_card(card(tile={"size_px": 64, "overlap_px": 8}))
    assert parsed.task.value == "cbct-to-ct" and parsed.output.clip_range == (-1024.0, 3071.0)
    assert parsed.tile is not None and parsed.tile.blend == "cosine"
    assert parsed.documentation == {"architecture": "test"}
    assert parsed.to_dict() == card(tile={"size_px": 64, "overlap_px": 8})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"context_slices": 2}, "card.context_slices must be odd"),
        ({"schema": "other/v9"}, "card.schema"),
        ({"version": "v1"}, "card.version"),
        ({"task": "ct-to-mr"}, "card.task must be one of"),
        ({"site": "thorax"}, "card.site must be one of ['brain', 'pelvis', 'any'], got 'thorax'"),
        ({"size_multiple": 0}, "card.size_multiple must be an integer >= 1"),
        ({"in_plane_spacing_mm": [1.0]}, "card.in_plane_spacing_mm"),
        ({"colour": "red"}, "unknown field(s) ['colour']"),
        ({"tile": {"size_px": 10, "overlap_px": 2}, "size_multiple": 4}, "card.tile.size_px 10"),
        ({"dose_reduction_factor": 4}, "pet-denoise only"),
        ({"task": "mr-to-ct"}, "do not match task mr-to-ct"),
        ({"output": {**CT_CARD["output"], "clip": [0, 100]}}, "card.output.background -1000.0"),
        ({"output": {**CT_CARD["output"], "unit": "SUVbw"}}, "card.output.unit 'SUVbw'"),
        ({"body_mask": {"kind": "smoothed_threshold", "sigma_mm": 1, "threshold": 1}}, "card.body_mask.kind"),
        (
            {
                "output": {
                    **CT_CARD["output"],
                    "normalisation": {
                        "kind": "percentile",
                        "low_percentile": 1,
                        "high_percentile": 99,
                        "upper_bound": 2,
                    },
                }
            },
            "cannot be inverted on a model output",
        ),
    ],
)
def test_malformed_card_names_the_field(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(CardError) as info:
        parse_card(card(**changes), source="x/card.json")
    assert str(info.value).startswith("x/card.json: ")
    assert message in str(info.value)


def test_missing_field_is_named() -> None:
    data = card()
    del data["body_mask"]
    with pytest.raises(CardError, match=r"lacks required field\(s\) \['body_mask'\]"):
        parse_card(data)


def test_pet_card_needs_a_dose_reduction_factor() -> None:
    pet = card(
        task="pet-denoise",
        input={"modality": "PT", "unit": "SUVbw", "normalisation": {"kind": "suv_log", "scale": 1}},
        output={
            "modality": "PT",
            "unit": "SUVbw",
            "normalisation": {"kind": "suv_log", "scale": 1},
            "background": 0,
            "clip": [0, 100],
        },
    )
    with pytest.raises(CardError, match="dose_reduction_factor is missing"):
        parse_card(pet)
    assert parse_card({**pet, "dose_reduction_factor": 4}).dose_reduction_factor == 4.0


def test_config_round_trip_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "config.pbtxt"
    extra = "# comment\ninstance_group [ { kind: KIND_GPU } ]\n"
    path.write_text(render_config("m", 3, max_batch_size=4) + extra)
    assert check_config(path, model_name="m", channels=3).max_batch_size == 4
    with pytest.raises(ConfigError, match=r"input.dims must be \[1, -1, -1\] or \[-1, -1, -1\], got \[3, -1"):
        check_config(path, model_name="m", channels=1)
    # -1 channels (a model whose versions differ in context slices) serves any card's slices.
    path.write_text(render_config("m", -1, max_batch_size=4))
    assert check_config(path, model_name="m", channels=3).channels == -1
    assert check_config(path, model_name="m", channels=7).channels == -1
    with pytest.raises(ConfigError, match="differs from the folder name 'other'"):
        check_config(path, model_name="other", channels=3)
    path.write_text(render_config("m", 1).replace("onnxruntime_onnx", "tensorrt_plan"))
    with pytest.raises(ConfigError, match="platform must be"):
        check_config(path, model_name="m", channels=1)
    path.write_text(render_config("m", 1).replace("TYPE_FP32", "TYPE_FP16", 1))
    with pytest.raises(ConfigError, match=r"input\.data_type must be TYPE_FP32"):
        check_config(path, model_name="m", channels=1)
    with pytest.raises(ConfigError, match="unclosed"):
        parse_pbtxt("input [ { name: 'x' }")


def test_repository_loads_versions_and_resolves(tmp_path: Path) -> None:
    folder = write_model(tmp_path, card(), build)
    (folder / "2").mkdir()
    build(folder / "2" / "model.onnx")
    (folder / "2" / "card.json").write_text(json.dumps(card(version="2")))
    write_model(
        tmp_path,
        card(
            name="mr2ct",
            task="mr-to-ct",
            input={
                "modality": "MR",
                "unit": "MR_AU",
                "normalisation": {
                    "kind": "percentile",
                    "low_percentile": 0.5,
                    "high_percentile": 99.5,
                    "upper_bound": 3,
                },
            },
        ),
        build,
    )
    repo = ModelRepository.load(tmp_path)
    assert [(e.card.name, e.card.version) for e in repo.entries()] == [
        ("cbct-test", "1"),
        ("cbct-test", "2"),
        ("mr2ct", "1"),
    ]
    assert repo.resolve(task="cbct-to-ct").card.version == "2"
    assert repo.resolve(task="cbct-to-ct", version="1").card.version == "1"
    with pytest.raises(InputError, match="does task mr-to-ct, not cbct-to-ct"):
        repo.resolve(model="mr2ct", task="cbct-to-ct")
    with pytest.raises(InputError, match="pass --model NAME or --task TASK"):
        repo.resolve()
    with pytest.raises(NotFoundError, match="pet-denoise"):
        repo.resolve(task="pet-denoise")


def test_ambiguous_task_asks_for_a_model(tmp_path: Path) -> None:
    write_model(tmp_path, card(), build)
    write_model(tmp_path, card(name="cbct-brain"), build)
    with pytest.raises(InputError, match="several models do task cbct-to-ct"):
        ModelRepository.load(tmp_path).resolve(task="cbct-to-ct")


def test_site_chooses_among_a_tasks_models_and_checks_a_named_model(tmp_path: Path) -> None:
    write_model(tmp_path, card(name="cbct-brain", site="brain"), build)
    write_model(tmp_path, card(name="cbct-pelvis", site="pelvis"), build)
    repo = ModelRepository.load(tmp_path)
    with pytest.raises(
        InputError, match=r"\(\['cbct-brain', 'cbct-pelvis'\]\): pass --site \(brain, pelvis\)"
    ):
        repo.resolve(task="cbct-to-ct")
    assert repo.resolve(task="cbct-to-ct", site="pelvis").card.name == "cbct-pelvis"
    assert repo.resolve(task="cbct-to-ct", site="BRAIN").card.name == "cbct-brain"
    assert repo.resolve(model="cbct-pelvis", site="pelvis").card.name == "cbct-pelvis"
    with pytest.raises(InputError, match="'cbct-brain' was trained for site brain, not pelvis"):
        repo.resolve(model="cbct-brain", site="pelvis")
    with pytest.raises(InputError, match="site must be one of brain, pelvis, any, got 'thorax'"):
        repo.resolve(task="cbct-to-ct", site="thorax")


def test_a_model_for_any_site_serves_every_site(tmp_path: Path) -> None:
    write_model(tmp_path, card(name="cbct-any", site="any"), build)
    write_model(tmp_path, card(name="cbct-brain", site="brain"), build)
    repo = ModelRepository.load(tmp_path)
    assert repo.resolve(model="cbct-any", site="pelvis").card.name == "cbct-any"
    assert repo.resolve(task="cbct-to-ct", site="pelvis").card.name == "cbct-any"
    with pytest.raises(
        InputError, match=r"at site brain \(\['cbct-any', 'cbct-brain'\]\): pass --model NAME"
    ):
        repo.resolve(task="cbct-to-ct", site="brain")


def test_a_site_no_model_serves_is_not_found(tmp_path: Path) -> None:
    write_model(tmp_path, card(name="cbct-brain", site="brain"), build)
    with pytest.raises(NotFoundError, match="no model in the repository does task cbct-to-ct at site pelvis"):
        ModelRepository.load(tmp_path).resolve(task="cbct-to-ct", site="pelvis")


def test_version_without_its_card_is_refused(tmp_path: Path) -> None:
    folder = write_model(tmp_path, card(), build)
    build(folder / "3" / "model.onnx")
    with pytest.raises(RepositoryError, match="does not describe version folder '3'"):
        ModelRepository.load(tmp_path)


def test_missing_onnx_and_bad_card_json_name_the_file(tmp_path: Path) -> None:
    folder = write_model(tmp_path, card(), build)
    (folder / "1" / "model.onnx").unlink()
    with pytest.raises(RepositoryError, match=r"1/model.onnx: not found"):
        ModelRepository.load(tmp_path)
    build(folder / "1" / "model.onnx")
    (folder / "card.json").write_text("{not json")
    with pytest.raises(CardError, match=r"card.json: cannot read the card"):
        ModelRepository.load(tmp_path)


def test_missing_or_empty_repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(RepositoryError, match="is not a folder"):
        ModelRepository.load(tmp_path / "absent")
    with pytest.raises(RepositoryError, match="holds no model"):
        ModelRepository.load(tmp_path)
    monkeypatch.setenv(REPOSITORY_ENV, str(tmp_path / "elsewhere"))
    assert default_repository_path() == tmp_path / "elsewhere"
    monkeypatch.delenv(REPOSITORY_ENV)
    assert default_repository_path().parts[-2:] == ("models", "repository")
