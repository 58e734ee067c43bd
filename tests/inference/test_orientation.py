"""Non-axial storage: the engine's result is the same physical image whatever the index order."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from service.inference import Engine
from service.inference.orientation import plan
from service.volume import Volume
from tests.inference.helpers import card, conv_model, write_model

SPACING = (0.5, 0.7, 2.0)  # canonical x, y, z (mm)


def lps(volume: Volume, ijk: list[int]) -> tuple[float, float, float]:
    x, y, z = (float(v) for v in volume.index_to_lps(ijk))
    return (x, y, z)


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    # 2.5D, asymmetric in x, y and across slices: any wrong axis order or flip changes the output.
    kernel = np.zeros((3, 3, 3), np.float32)
    kernel[0, 1, 1], kernel[1, 1, 2], kernel[1, 0, 1], kernel[2, 1, 1] = 0.2, 0.5, -0.3, 0.6
    data = card(context_slices=3, in_plane_spacing_mm=list(SPACING[:2]))
    write_model(tmp_path, data, lambda p: conv_model(p, kernel, bias=0.1))
    return Engine(tmp_path)


@pytest.fixture
def canonical() -> Volume:
    rng = np.random.default_rng(11)
    return Volume(
        rng.uniform(-900, 1500, (5, 6, 7)).astype(np.float32),
        spacing_mm=SPACING,
        origin_mm=(10.0, 20.0, 30.0),
    )


def test_sagittal_storage_gives_the_same_physical_result(engine: Engine, canonical: Volume) -> None:
    a = canonical.array
    nz = a.shape[0]
    # Stored index axes: i -> +y (P), j -> -z (I), k -> +x (L): stored[k, j, i] = a[nz-1-j, i, k].
    stored = np.flip(a, axis=0).transpose(2, 0, 1)
    direction = np.zeros((3, 3))
    direction[1, 0], direction[2, 1], direction[0, 2] = 1.0, -1.0, 1.0
    sagittal = Volume(
        stored,
        spacing_mm=(SPACING[1], SPACING[2], SPACING[0]),
        origin_mm=lps(canonical, [0, 0, nz - 1]),
        direction=direction,
    )
    assert np.allclose(sagittal.index_to_lps([3, 1, 2]), canonical.index_to_lps([2, 3, nz - 2]))
    reference = engine.translate(canonical, model="cbct-test")
    result = engine.translate(sagittal, model="cbct-test")
    assert result.volume.same_grid(sagittal)
    expected = np.flip(reference.volume.array, axis=0).transpose(2, 0, 1)
    np.testing.assert_allclose(result.volume.array, expected, atol=1e-3)
    assert reference.warnings == ()
    assert any("re-indexed" in w for w in result.warnings)


def test_flipped_in_plane_axes_give_the_same_physical_result(engine: Engine, canonical: Volume) -> None:
    _, ny, nx = canonical.shape
    flipped = Volume(
        np.flip(canonical.array, axis=(1, 2)),
        spacing_mm=SPACING,
        origin_mm=lps(canonical, [nx - 1, ny - 1, 0]),
        direction=np.diag([-1.0, -1.0, 1.0]),
    )
    reference = engine.translate(canonical, model="cbct-test").volume.array
    result = engine.translate(flipped, model="cbct-test").volume.array
    np.testing.assert_allclose(result, np.flip(reference, axis=(1, 2)), atol=1e-3)


def test_oblique_volume_is_noted_not_resampled(engine: Engine, canonical: Volume) -> None:
    angle = math.radians(12.0)
    c, s = math.cos(angle), math.sin(angle)
    rotation = np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    oblique = Volume(canonical.array, spacing_mm=SPACING, direction=rotation)
    assert plan(rotation).identity and round(plan(rotation).obliquity_deg, 6) == 12.0
    result = engine.translate(oblique, model="cbct-test")
    reference = engine.translate(canonical, model="cbct-test")
    np.testing.assert_array_equal(result.volume.array, reference.volume.array)
    assert any("12.0 degrees oblique" in w for w in result.warnings)
