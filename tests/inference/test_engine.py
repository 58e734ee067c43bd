"""Engine tests on real ONNX Runtime sessions of tiny models with a computable effect."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from service.errors import CancelledError, InputError, NotFoundError, NumericError
from service.inference import Engine, EngineConfig
from service.volume import Modality, Unit, Volume
from tests.inference.helpers import (
    card,
    channel_model,
    conv_model,
    hu_to_norm,
    linear_model,
    nan_model,
    norm_to_hu,
    write_model,
)

RNG = np.random.default_rng(1234)


def ct(array: np.ndarray, spacing: tuple[float, float, float] = (1.0, 1.0, 2.5)) -> Volume:
    return Volume(array.astype(np.float32), spacing_mm=spacing, origin_mm=(-10.0, 5.0, 30.0))


def linear_engine(tmp_path: Path, a: float, b: float, **card_changes: Any) -> Engine:
    data = card(**card_changes)
    write_model(tmp_path, data, lambda p: linear_model(p, data["context_slices"], a, b))
    return Engine(tmp_path, EngineConfig(intra_op_threads=1, batch_size=3))


def test_provider_and_result_metadata(tmp_path: Path) -> None:
    engine = linear_engine(tmp_path, 1.0, 0.0)
    assert not engine.loaded
    engine.load()
    engine.load()  # idempotent
    assert engine.loaded
    assert engine.provider("cbct-test") == "CPUExecutionProvider"
    result = engine.translate(ct(RNG.uniform(-900, 1500, (4, 6, 5))), task="cbct-to-ct")
    assert (result.model, result.version, result.provider) == ("cbct-test", "1", "CPUExecutionProvider")
    assert set(result.timings_s) >= {"preprocess", "inference", "postprocess", "total"}


@pytest.mark.parametrize("shape", [(3, 17, 23), (5, 1, 30), (2, 33, 16)])
def test_linear_model_gives_known_hu_on_input_grid_with_padding(
    tmp_path: Path, shape: tuple[int, int, int]
) -> None:
    a, b = 0.5, 0.1
    engine = linear_engine(tmp_path, a, b, size_multiple=16)
    x = RNG.uniform(-1024, 3071, shape).astype(np.float32)
    src = ct(x)
    out = engine.translate(src, model="cbct-test").volume
    expected = np.clip(norm_to_hu(a * hu_to_norm(x) + b), -1024, 3071)
    np.testing.assert_allclose(out.array, expected, atol=2e-3 * 4095)
    np.testing.assert_allclose(out.array, expected, rtol=0, atol=0.05)
    assert out.same_grid(src) and out.source is src.source
    assert (out.modality.value, out.unit.value) == ("CT", "HU")


def test_anisotropic_spacing_resamples_in_plane_to_the_card_spacing(tmp_path: Path) -> None:
    # A gradient model: output = x[i+1] - x[i-1] - 1 (normalised); on a 1 mm grid a ramp of
    # g HU/mm gives 2 g HU between neighbours, i.e. 2 g / 2047.5 in normalised units.
    kernel = np.zeros((1, 3, 3), np.float32)
    kernel[0, 1, 2], kernel[0, 1, 0] = 1.0, -1.0
    data = card(in_plane_spacing_mm=[1.0, 1.0])
    write_model(tmp_path, data, lambda p: conv_model(p, kernel, bias=-1.0))
    engine = Engine(tmp_path)
    nz, ny, nx = 2, 9, 31
    spacing = (0.5, 2.0, 3.0)
    slope_hu_per_mm = 20.0
    i = np.arange(nx) * spacing[0]
    x = np.broadcast_to(-500.0 + slope_hu_per_mm * i, (nz, ny, nx)).copy()
    out = engine.translate(ct(x, spacing), model="cbct-test").volume
    expected = norm_to_hu(2.0 * slope_hu_per_mm * 1.0 / 2047.5 - 1.0)  # = -1024 + 2 g (HU)
    # Interior columns (away from the zero padding of the 3x3 kernel on the model grid).
    np.testing.assert_allclose(out.array[:, :, 4:-4], expected, atol=0.05)
    # Without resampling the model would see 2 * 20 * 0.5 HU between neighbours.
    assert abs(expected - norm_to_hu(2.0 * slope_hu_per_mm * 0.5 / 2047.5 - 1.0)) > 10


def test_resampling_round_trip_of_an_identity_model(tmp_path: Path) -> None:
    engine = linear_engine(tmp_path, 1.0, 0.0, in_plane_spacing_mm=[1.0, 1.0])
    nz, ny, nx = 2, 9, 31
    spacing = (0.5, 2.0, 3.0)
    jj, ii = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
    x = np.broadcast_to(-300.0 + 7.0 * ii + 11.0 * jj, (nz, ny, nx)).copy()
    out = engine.translate(ct(x, spacing), model="cbct-test").volume
    # Linear interpolation reproduces a ramp wherever no edge clamping occurs (rows 1..ny-2).
    np.testing.assert_allclose(out.array[:, 1:-1], x[:, 1:-1], atol=0.05)
    # Edge rows: the model grid reaches 0.25 input rows beyond the edge (clamped there).
    np.testing.assert_allclose(out.array, x, atol=11.0 * 0.25 + 0.05)
    const = engine.translate(ct(np.full((nz, ny, nx), 40.0), spacing), model="cbct-test").volume
    np.testing.assert_allclose(const.array, 40.0, atol=0.02)


def test_tiled_inference_equals_untiled_for_a_pointwise_model(tmp_path: Path) -> None:
    tiled_repo, plain_repo = tmp_path / "tiled", tmp_path / "plain"
    x = RNG.uniform(-1000, 2000, (3, 40, 37)).astype(np.float32)
    results = []
    for repo, tile in ((tiled_repo, {"size_px": 16, "overlap_px": 5, "blend": "cosine"}), (plain_repo, None)):
        data = card(tile=tile) if tile else card()
        write_model(repo, data, lambda p: linear_model(p, 1, 0.7, -0.2))
        results.append(Engine(repo, EngineConfig(batch_size=2)).translate(ct(x), model="cbct-test"))
    np.testing.assert_allclose(results[0].volume.array, results[1].volume.array, atol=0.02)
    expected = np.clip(norm_to_hu(0.7 * hu_to_norm(x) - 0.2), -1024, 3071)
    np.testing.assert_allclose(results[0].volume.array, expected, atol=0.05)


def test_context_slices_replicate_edge_slices(tmp_path: Path) -> None:
    weights = [1.0, 0.1, 0.01, 0.001, 0.0001]
    data = card(context_slices=5)
    write_model(tmp_path, data, lambda p: channel_model(p, weights))
    levels = np.array([-800.0, -200.0, 0.0, 300.0, 900.0, 1500.0])
    x = np.broadcast_to(levels[:, None, None], (6, 4, 5)).astype(np.float32)
    out = Engine(tmp_path, EngineConfig(batch_size=4)).translate(ct(x), model="cbct-test").volume
    xn = hu_to_norm(levels)
    for k in range(len(levels)):
        idx = np.clip(np.arange(k - 2, k + 3), 0, len(levels) - 1)
        want = np.clip(norm_to_hu(np.dot(weights, xn[idx])), -1024, 3071)
        np.testing.assert_allclose(out.array[k], want, atol=0.05)


def test_background_outside_the_body_mask(tmp_path: Path) -> None:
    engine = linear_engine(tmp_path, 1.0, 0.2, body_mask={"kind": "hu_threshold", "threshold_hu": -500})
    x = np.full((3, 20, 24), -1000.0, np.float32)
    x[:, 5:15, 6:18] = 40.0
    out = engine.translate(ct(x), model="cbct-test").volume.array
    inside = np.zeros(x.shape, bool)
    inside[:, 5:15, 6:18] = True
    assert np.all(out[~inside] == -1000.0)
    np.testing.assert_allclose(out[inside], norm_to_hu(hu_to_norm(40.0) + 0.2), atol=0.05)


def test_body_mask_on_the_model_grid_for_a_finer_input(tmp_path: Path) -> None:
    # A 4 mm square body in a 0.5 mm input, a model at 2 mm: the mask is computed on the 2 mm
    # grid (as in training) and brought back by nearest neighbour, so the background boundary
    # lies within one model voxel (2 mm = 4 input pixels) of the true edge.
    engine = linear_engine(
        tmp_path,
        1.0,
        0.2,
        body_mask={"kind": "hu_threshold", "threshold_hu": -500},
        in_plane_spacing_mm=[2.0, 2.0],
    )
    x = np.full((2, 64, 64), -1000.0, np.float32)
    x[:, 16:48, 12:52] = 40.0
    result = engine.translate(ct(x, (0.5, 0.5, 3.0)), model="cbct-test")
    out = result.volume.array
    assert result.volume.shape == x.shape
    core = np.zeros(x.shape, bool)
    core[:, 20:44, 16:48] = True
    halo = np.zeros(x.shape, bool)
    halo[:, 12:52, 8:56] = True
    assert np.all(out[~halo] == -1000.0)
    np.testing.assert_allclose(out[core], norm_to_hu(hu_to_norm(40.0) + 0.2), atol=0.05)
    # The outline is that of the body, not of the field: most of the band is decided.
    band = halo & ~core
    assert 0.2 < np.mean(out[band] == -1000.0) < 0.8


def test_cancel_stops_between_batches(tmp_path: Path) -> None:
    engine = linear_engine(tmp_path, 1.0, 0.0)
    cancel = threading.Event()
    calls: list[tuple[str, float]] = []

    def progress(stage: str, fraction: float) -> None:
        calls.append((stage, fraction))
        if stage == "inference":
            cancel.set()

    with pytest.raises(CancelledError):
        engine.translate(ct(np.zeros((10, 4, 4))), model="cbct-test", progress=progress, cancel=cancel)
    assert [c for c in calls if c[0] == "inference"] == [("inference", 1 / 4)]  # 10 slices / 3 per run


def test_wrong_modality_is_refused_naming_both(tmp_path: Path) -> None:
    engine = linear_engine(tmp_path, 1.0, 0.0)
    mr = Volume(np.ones((2, 4, 4), np.float32), spacing_mm=(1, 1, 1), modality=Modality.MR, unit=Unit.MR_AU)
    with pytest.raises(InputError, match=r"expects CT in HU, got MR in MR_AU"):
        engine.translate(mr, model="cbct-test")


def test_nan_output_raises_numeric_error(tmp_path: Path) -> None:
    write_model(tmp_path, card(), lambda p: nan_model(p))
    with pytest.raises(NumericError, match="NaN"):
        Engine(tmp_path).translate(ct(np.zeros((2, 4, 4))), model="cbct-test")


def test_unknown_model_or_version(tmp_path: Path) -> None:
    engine = linear_engine(tmp_path, 1.0, 0.0)
    with pytest.raises(NotFoundError, match="'nope'"):
        engine.get_model("nope")
    with pytest.raises(NotFoundError, match="no version '7'"):
        engine.translate(ct(np.zeros((1, 2, 2))), model="cbct-test", version="7")
    with pytest.raises(NotFoundError, match="mr-to-ct"):
        engine.resolve(task="mr-to-ct")


def test_max_batch_size_zero_config_and_batch_cap(tmp_path: Path) -> None:
    data = card()
    write_model(tmp_path, data, lambda p: linear_model(p, 1, 1.0, 0.0), max_batch_size=0)
    engine = Engine(tmp_path, EngineConfig(batch_size=64))
    x = RNG.uniform(-1000, 1000, (5, 3, 3))
    np.testing.assert_allclose(engine.translate(ct(x), model="cbct-test").volume.array, x, atol=0.05)
    write_model(tmp_path / "capped", data, lambda p: linear_model(p, 1, 1.0, 0.0), max_batch_size=2)
    seen: list[float] = []
    Engine(tmp_path / "capped", EngineConfig(batch_size=64)).translate(
        ct(x), model="cbct-test", progress=lambda s, f: seen.append(f) if s == "inference" else None
    )
    assert len(seen) == 3  # 5 slices, at most 2 per run


def test_engine_config_is_validated_once(tmp_path: Path) -> None:
    from service.errors import OptionError

    with pytest.raises(OptionError, match="batch_size must be an integer >= 1, got 0"):
        EngineConfig(batch_size=0)
    with pytest.raises(OptionError, match="gpu_mem_limit_bytes"):
        EngineConfig(gpu_mem_limit_bytes=-5)
    write_model(tmp_path, card(), lambda p: linear_model(p, 1, 1.0, 0.0))
    engine = Engine(tmp_path, EngineConfig(providers=("NoSuchExecutionProvider",)))
    with pytest.raises(OptionError, match="none of the providers"):
        engine.load()
    assert not engine.loaded


def test_concurrent_translations_match_sequential_ones(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    kernel = RNG.normal(0, 0.3, (1, 3, 3)).astype(np.float32)
    write_model(tmp_path, card(), lambda p: conv_model(p, kernel, 0.05))
    engine = Engine(tmp_path, EngineConfig(intra_op_threads=1, batch_size=2))
    volumes = [ct(RNG.uniform(-1000, 2000, (5, 16, 16))) for _ in range(4)]
    sequential = [engine.translate(v, model="cbct-test").volume.array for v in volumes]
    with ThreadPoolExecutor(max_workers=2) as pool:
        parallel = list(pool.map(lambda v: engine.translate(v, model="cbct-test").volume.array, volumes))
    for a, b in zip(sequential, parallel, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(sequential[0], sequential[1])


def test_cuda_provider_options_when_cuda_is_available(monkeypatch: pytest.MonkeyPatch) -> None:
    # This CPU-only onnxruntime has no CUDA; pretend the build has it to check the options passed.
    import onnxruntime

    from service.inference.engine import _providers

    monkeypatch.setattr(
        onnxruntime, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"]
    )
    chosen = _providers(EngineConfig(gpu_mem_limit_bytes=2**30, device_id=1))
    assert chosen == [
        (
            "CUDAExecutionProvider",
            {
                "device_id": 1,
                "gpu_mem_limit": 2**30,
                "arena_extend_strategy": "kSameAsRequested",
                "cudnn_conv_algo_search": "DEFAULT",
            },
        ),
        "CPUExecutionProvider",
    ]
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: ["CPUExecutionProvider"])
    assert _providers(EngineConfig()) == ["CPUExecutionProvider"]


def test_absurd_resampling_is_refused_before_work(tmp_path: Path) -> None:
    engine = linear_engine(tmp_path, 1.0, 0.0, in_plane_spacing_mm=[0.1, 0.1])
    with pytest.raises(InputError, match="above the limit 4096"):
        engine.translate(ct(np.zeros((1, 100, 50)), spacing=(5.0, 5.0, 5.0)), model="cbct-test")
