"""Export: ONNX parity with PyTorch, repository entry accepted by the serving engine, and the
engine's translation equal to the training-side prediction (one pre/post-processing, two runtimes)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from export.onnx_export import export_best, load_best
from export.parity import check_parity
from export.repository import build_card, write_entry
from models.networks import GeneratorSpec, size_multiple
from models.training.config import PRESETS, TrainConfig
from models.training.loop import train
from models.training.predict import predict_native
from service.errors import InputError
from service.inference.card import Task
from service.inference.engine import Engine
from service.inference.normalisation import parse_normalisation
from tests.training.conftest import TINY, phantom_pair, prepared

TOLERANCE = {Task.MR_TO_CT: 1.0, Task.CBCT_TO_CT: 1.0, Task.PET_DENOISE: 0.01}  # HU, HU, SUV


def _doc() -> dict[str, object]:
    return {"architecture": "tiny test network", "intended_use": "tests only", "limitations": "untrained"}


def test_export_parity_repository_and_engine_agree_with_training(task: Task, tmp_path: Path) -> None:
    subjects = prepared(task, range(3))
    config = TrainConfig(
        task=task, data=tmp_path, out=tmp_path / "run", epochs=1, steps_per_epoch=1, batch_size=2,
        crop_px=32, generator=TINY[task], threads=1,
    )  # fmt: skip
    result = train(config, subjects[:2], subjects[2:], progress=False)
    assert result.best is not None
    onnx_path = export_best(result.best, tmp_path / "model.onnx")
    module, payload = load_best(result.best)
    spec = GeneratorSpec.from_dict(payload["spec"])
    preset = PRESETS[task]
    report = check_parity(
        onnx_path, module, in_channels=spec.in_channels, multiple=size_multiple(spec),
        output_params=subjects[2].output_params, unit=preset.output["unit"], subjects=subjects[2:],
        input_pad=parse_normalisation(None, preset.input["normalisation"]).pad_value,
    )  # fmt: skip
    assert report.cases >= 4
    assert report.within(TOLERANCE[task]), report

    card = build_card(
        preset, name=f"tiny_{task.value.replace('-', '_')}", version="1", site="any", spec=spec,
        in_plane_spacing_mm=(2.0, 2.0), documentation=_doc(),
        dose_reduction_factor=10 if task is Task.PET_DENOISE else None,
    )  # fmt: skip
    repo = tmp_path / "repository"
    version_dir = write_entry(repo, onnx_path=onnx_path, card=card)
    assert (version_dir / "model.onnx").is_file()
    assert json.loads((repo / card["name"] / "card.json").read_text())["name"] == card["name"]

    engine = Engine(repo)
    source, _ = phantom_pair(task, 2)
    served = engine.translate(source, model=card["name"]).volume
    expected = predict_native(
        module, subjects[2], context_slices=spec.in_channels, multiple=size_multiple(spec),
        pad_value=parse_normalisation(None, preset.input["normalisation"]).pad_value,
        background=float(preset.output["background"]),
        clip=(float(preset.output["clip"][0]), float(preset.output["clip"][1])),
    )  # fmt: skip
    assert served.same_grid(source)
    assert served.unit.value == preset.output["unit"]
    np.testing.assert_allclose(served.array, expected, atol=TOLERANCE[task])


def test_a_file_that_is_not_a_best_pt_is_named_with_the_fix(tmp_path: Path) -> None:
    shipped = Path(__file__).resolve().parents[2] / "models/repository/pet_denoise_brain_drf10/6/model.onnx"
    with pytest.raises(InputError, match=r"^checkpoint: .*model.onnx is an ONNX model .*pass the best.pt"):
        load_best(shipped)
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint")
    with pytest.raises(InputError, match=r"notes.pt is not a PyTorch file \(\w+\): pass the best.pt"):
        load_best(text)
    with pytest.raises(InputError, match=r"not found: pass the best.pt"):
        load_best(tmp_path / "missing.pt")


def test_card_is_validated_before_anything_is_written(tmp_path: Path) -> None:
    from service.inference.card import CardError

    preset = PRESETS[Task.PET_DENOISE]
    with pytest.raises(CardError, match="dose_reduction_factor"):
        build_card(
            preset, name="pet", version="1", site="any", spec=TINY[Task.PET_DENOISE],
            in_plane_spacing_mm=(2.0, 2.0), documentation=_doc(),
        )  # fmt: skip
    assert not any(tmp_path.iterdir())


def _offset_session(inside: np.ndarray, delta: float) -> ort.InferenceSession:
    """A real ONNX Runtime session of a two-node graph: the input's first channel, plus ``delta``
    outside ``inside`` (``(h, w)``)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    h, w = inside.shape
    offset = np.where(inside, 0.0, delta).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Slice", ["input", "starts", "ends", "axes"], ["first"]),
            helper.make_node("Add", ["first", "offset"], ["output"]),
        ],
        "offset_outside",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["n", 3, h, w])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["n", 1, h, w])],
        initializer=[
            numpy_helper.from_array(np.array([0], np.int64), "starts"),
            numpy_helper.from_array(np.array([1], np.int64), "ends"),
            numpy_helper.from_array(np.array([1], np.int64), "axes"),
            numpy_helper.from_array(offset, "offset"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def test_parity_on_real_slices_counts_the_served_body_only() -> None:
    import torch

    from export.parity import _compare
    from service.inference.normalisation import NormalisationKind, NormalisationParams

    class _First(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x[:, :1]

    params = NormalisationParams(NormalisationKind.CLIP_LINEAR, low=-1024.0, high=3071.0)
    batch = np.random.default_rng(0).uniform(-1, 1, size=(1, 3, 16, 16)).astype(np.float32)
    body = np.zeros((16, 16), dtype=bool)
    body[4:12, 4:12] = True
    session = _offset_session(body, 0.01)  # 0.01 network units = 20.5 HU, outside the body only
    norm, native, anywhere = _compare(session, _First(), batch, params, body)
    assert norm == 0.0 and native == 0.0
    assert anywhere == pytest.approx(0.01 * (3071 + 1024) / 2, rel=1e-3)
    # without a mask (random inputs) every pixel counts
    norm, native, anywhere = _compare(session, _First(), batch, params)
    assert norm == pytest.approx(0.01, rel=1e-3) and native == anywhere


def _tiny_pet_model(tmp_path: Path, slices: int, name: str) -> tuple[Path, dict[str, object]]:
    """A one-step PET model with ``slices`` context slices, exported, and its card (version = slices)."""
    from dataclasses import replace

    spec = replace(TINY[Task.PET_DENOISE], in_channels=slices)
    config = TrainConfig(
        task=Task.PET_DENOISE, data=tmp_path, out=tmp_path / f"run{slices}", epochs=1, steps_per_epoch=1,
        batch_size=2, crop_px=32, generator=spec, threads=1,
    )  # fmt: skip
    subjects = prepared(Task.PET_DENOISE, range(3))
    result = train(config, subjects[:2], subjects[2:], progress=False)
    assert result.best is not None
    onnx_path = export_best(result.best, tmp_path / f"model{slices}.onnx")
    card = build_card(
        PRESETS[Task.PET_DENOISE], name=name, version=str(slices), site="any", spec=spec,
        in_plane_spacing_mm=(2.0, 2.0), documentation=_doc(), dose_reduction_factor=10,
    )  # fmt: skip
    return onnx_path, card


def test_versions_with_different_context_slices_share_one_config_and_both_serve(tmp_path: Path) -> None:
    from service.inference.triton_config import check_config

    repo = tmp_path / "repository"
    for slices in (3, 7):
        onnx_path, card = _tiny_pet_model(tmp_path, slices, "pet_tiny")
        write_entry(repo, onnx_path=onnx_path, card=card)
    config_path = repo / "pet_tiny" / "config.pbtxt"
    # Triton applies one config to every version: the channel dimension becomes "any".
    assert "dims: [ -1, -1, -1 ]" in config_path.read_text()
    assert check_config(config_path, model_name="pet_tiny", channels=3).channels == -1
    engine = Engine(repo)
    source, _ = phantom_pair(Task.PET_DENOISE, 2)
    outputs = [engine.translate(source, model="pet_tiny", version=v).volume.array for v in ("3", "7")]
    assert all(np.isfinite(o).all() and o.shape == source.shape for o in outputs)
    assert not np.array_equal(outputs[0], outputs[1])


def test_a_failed_export_leaves_the_repository_as_it_was(tmp_path: Path) -> None:
    from service.inference.card import CardError

    repo = tmp_path / "repository"
    onnx3, card3 = _tiny_pet_model(tmp_path, 3, "pet_tiny")
    write_entry(repo, onnx_path=onnx3, card=card3)
    before = {p.relative_to(repo): p.read_bytes() for p in repo.rglob("*") if p.is_file()}
    # Another model's folder breaks the repository: the final load fails, after the new files exist.
    (repo / "broken" / "1").mkdir(parents=True)
    onnx7, card7 = _tiny_pet_model(tmp_path, 7, "pet_tiny")
    with pytest.raises(CardError, match="broken"):
        write_entry(repo, onnx_path=onnx7, card=card7)
    with pytest.raises(CardError, match="broken"):
        write_entry(repo, onnx_path=onnx7, card={**card7, "name": "pet_new"})
    after = {p.relative_to(repo): p.read_bytes() for p in repo.rglob("*") if p.is_file()}
    assert after == before  # no version 7, no pet_new, card.json and config.pbtxt unchanged
    assert not (repo / "pet_tiny" / "7").exists() and not (repo / "pet_new").exists()


def test_an_export_beside_a_broken_version_card_names_it_and_writes_nothing(tmp_path: Path) -> None:
    from service.inference.card import CardError

    repo = tmp_path / "repository"
    onnx3, card3 = _tiny_pet_model(tmp_path, 3, "pet_tiny")
    write_entry(repo, onnx_path=onnx3, card=card3)
    (repo / "pet_tiny" / "3" / "card.json").write_text("{not json")
    onnx7, card7 = _tiny_pet_model(tmp_path, 7, "pet_tiny")
    with pytest.raises(CardError, match=r"3/card\.json"):
        write_entry(repo, onnx_path=onnx7, card=card7)
    assert not (repo / "pet_tiny" / "7").exists()
