"""MR -> CT and PET denoising through the engine: percentile and suv_log normalisation, masks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from service.errors import InputError
from service.inference import Engine, RepositoryError
from service.volume import Modality, Unit, Volume
from tests.inference.helpers import card, linear_model, norm_to_hu, write_model

PET_IO = {"modality": "PT", "unit": "SUVbw", "normalisation": {"kind": "suv_log", "scale": 2.0}}


def pet_card(**changes):
    return card(
        name="pet-test",
        task="pet-denoise",
        input=PET_IO,
        output={**PET_IO, "background": 0, "clip": [0, 50]},
        dose_reduction_factor=4,
        body_mask={"kind": "smoothed_threshold", "sigma_mm": 0.0, "threshold": 0.05},
        in_plane_spacing_mm=[4.0, 4.0],
        **changes,
    )


def test_pet_suv_log_chain_and_background(tmp_path: Path) -> None:
    a, b = 1.1, 0.02
    write_model(tmp_path, pet_card(), lambda p: linear_model(p, 1, a, b))
    x = np.zeros((3, 10, 12), np.float32)
    x[:, 2:8, 3:9] = np.linspace(0.1, 20.0, 36, dtype=np.float32).reshape(6, 6)
    pet = Volume(x, spacing_mm=(4.0, 4.0, 3.0), modality=Modality.PT, unit=Unit.SUVBW)
    out = Engine(tmp_path).translate(pet, task="pet-denoise").volume
    inside = x > 0.05
    expected = np.clip(2.0 * np.expm1(a * np.log1p(x.astype(np.float64) / 2.0) + b), 0, 50)
    np.testing.assert_allclose(out.array[inside], expected[inside], rtol=1e-5, atol=1e-5)
    assert np.all(out.array[~inside] == 0.0)
    assert (out.modality.value, out.unit.value) == ("PT", "SUVbw")


def test_pet_in_bq_per_ml_is_refused(tmp_path: Path) -> None:
    write_model(tmp_path, pet_card(), lambda p: linear_model(p, 1, 1.0, 0.0))
    pet = Volume(np.ones((2, 4, 4), np.float32), spacing_mm=(4, 4, 3), modality=Modality.PT, unit=Unit.BQML)
    with pytest.raises(InputError, match="expects PT in SUVbw, got PT in Bq/ml"):
        Engine(tmp_path).translate(pet, task="pet-denoise")


def test_mr_percentiles_map_the_body_to_the_ct_range(tmp_path: Path) -> None:
    mr_card = card(
        name="mr-test",
        task="mr-to-ct",
        input={
            "modality": "MR",
            "unit": "MR_AU",
            "normalisation": {
                "kind": "percentile",
                "low_percentile": 0,
                "high_percentile": 100,
                "upper_bound": 3,
            },
        },
        body_mask={"kind": "relative_threshold", "reference_percentile": 100, "fraction": 0.1},
    )
    write_model(tmp_path, mr_card, lambda p: linear_model(p, 1, 1.0, 0.0))
    x = np.full((2, 10, 10), 3.0, np.float32)  # background noise floor, outside the mask
    x[:, 2:8, 2:8] = np.linspace(100, 600, 36, dtype=np.float32).reshape(6, 6)
    mr = Volume(x, spacing_mm=(1, 1, 3), modality=Modality.MR, unit=Unit.MR_AU)
    out = Engine(tmp_path).translate(mr, model="mr-test").volume
    inside = x > 60
    # Inside the body: p0 = 100 -> -1 -> -1024 HU; p100 = 600 -> 1 -> 3071 HU; linear between.
    expected = norm_to_hu(2 * (x - 100.0) / 500.0 - 1)
    np.testing.assert_allclose(out.array[inside], expected[inside], atol=0.05)
    assert np.all(out.array[~inside] == -1000.0)
    assert (out.modality.value, out.unit.value) == ("CT", "HU")


def test_unloadable_or_misnamed_onnx_is_a_repository_error(tmp_path: Path) -> None:
    folder = write_model(tmp_path, card(), lambda p: linear_model(p, 1, 1.0, 0.0))
    (folder / "1" / "model.onnx").write_bytes(b"not an onnx model")
    with pytest.raises(RepositoryError, match="ONNX Runtime cannot load it"):
        Engine(tmp_path).load()


def test_progress_stages_in_order(tmp_path: Path) -> None:
    write_model(tmp_path, card(), lambda p: linear_model(p, 1, 1.0, 0.0))
    seen: list[tuple[str, float]] = []
    vol = Volume(np.zeros((5, 4, 4), np.float32), spacing_mm=(1, 1, 1))
    Engine(tmp_path).translate(vol, model="cbct-test", progress=lambda s, f: seen.append((s, f)))
    stages = [s for s, _ in seen]
    assert stages[0] == "preprocess" and stages[-1] == "postprocess"
    assert stages.index("inference") > stages.index("preprocess")
    inference = [f for s, f in seen if s == "inference"]
    assert inference == sorted(inference) and inference[-1] == 1.0


def _identity_onnx(path: Path, shape: list[int | str], reshape_to: list[int] | None = None) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    if reshape_to is None:
        nodes, inits = [helper.make_node("Identity", ["input"], ["output"])], []
    else:
        nodes = [helper.make_node("Reshape", ["input", "shape"], ["output"])]
        inits = [numpy_helper.from_array(np.array(reshape_to, np.int64), "shape")]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 1, "H", "W"])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))


@pytest.mark.parametrize(
    ("shape", "context"),
    [([1, 1, "H", "W"], 1), (["N", 1, 64, 64], 1), (["N", 1, "H", "W"], 3)],
)
def test_static_axes_or_channel_mismatch_are_refused(
    tmp_path: Path, shape: list[int | str], context: int
) -> None:
    write_model(tmp_path, card(context_slices=context), lambda p: _identity_onnx(p, shape))
    with pytest.raises(RepositoryError, match=r"input shape must be \[N, \d, H, W\]"):
        Engine(tmp_path).load()


def test_onnx_runtime_failure_is_a_typed_error(tmp_path: Path) -> None:
    from service.inference.engine import InferenceError

    write_model(tmp_path, card(), lambda p: _identity_onnx(p, ["N", 1, "H", "W"], [-1, 1, 4, 4]))
    engine = Engine(tmp_path)
    ok = Volume(np.zeros((2, 4, 4), np.float32), spacing_mm=(1, 1, 1))
    np.testing.assert_allclose(engine.translate(ok, model="cbct-test").volume.array, 0.0, atol=0.05)
    with pytest.raises(InferenceError, match="ONNX Runtime failed running 'cbct-test' v1"):
        engine.translate(Volume(np.zeros((2, 5, 5), np.float32), spacing_mm=(1, 1, 1)), model="cbct-test")
