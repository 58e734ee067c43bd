"""Volume: validation at construction, geometry, SimpleITK round trip."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from service.errors import NumericError, VolumeError
from service.volume import Modality, Unit, Volume


def _oblique_direction() -> np.ndarray:
    angle = np.deg2rad(17.0)
    rot = np.array(
        [[np.cos(angle), -np.sin(angle), 0.0], [np.sin(angle), np.cos(angle), 0.0], [0.0, 0.0, 1.0]]
    )
    return rot


def test_array_is_float32_readonly_and_axes_are_zyx() -> None:
    vol = Volume(
        np.arange(24, dtype=np.int16).reshape(2, 3, 4),  # type: ignore[arg-type]
        spacing_mm=(0.5, 0.7, 2.0),
    )
    assert vol.array.dtype == np.float32
    assert vol.shape == (2, 3, 4)
    assert vol.size_xyz == (4, 3, 2)
    with pytest.raises(ValueError):
        vol.array[0, 0, 0] = 5


def test_index_to_lps_follows_origin_direction_spacing() -> None:
    direction = _oblique_direction()
    vol = Volume(
        np.zeros((3, 4, 5), dtype=np.float32),
        spacing_mm=(0.5, 0.8, 2.5),
        origin_mm=(10, -20, 30),
        direction=direction,
    )
    lps = vol.index_to_lps([[1, 2, 3]])[0]
    expected = np.array([10, -20, 30]) + direction @ np.array([0.5 * 1, 0.8 * 2, 2.5 * 3])
    np.testing.assert_allclose(lps, expected, atol=1e-12)
    np.testing.assert_allclose(vol.affine_lps()[:3, 3], [10, -20, 30])


def test_sitk_round_trip_keeps_geometry_and_values() -> None:
    rng = np.random.default_rng(0)
    arr = rng.normal(size=(4, 6, 5)).astype(np.float32)
    vol = Volume(
        arr, spacing_mm=(0.9, 1.1, 3.0), origin_mm=(-5.5, 7.25, 100.0), direction=_oblique_direction()
    )
    image = vol.to_sitk()
    # SimpleITK's own index->physical mapping must agree with ours.
    assert np.allclose(image.TransformIndexToPhysicalPoint((2, 3, 1)), vol.index_to_lps([[2, 3, 1]])[0])
    back = Volume.from_sitk(image, modality="CT", unit="HU")
    np.testing.assert_array_equal(back.array, arr)
    assert back.spacing_mm == pytest.approx(vol.spacing_mm)
    assert back.origin_mm == pytest.approx(vol.origin_mm)
    np.testing.assert_allclose(back.direction, vol.direction, atol=1e-12)
    assert back.same_grid(vol)


def test_enums_accept_strings_and_refuse_mismatched_units() -> None:
    vol = Volume(
        np.zeros((1, 2, 2), dtype=np.float32),
        spacing_mm=(1, 1, 1),
        modality="pet",  # type: ignore[arg-type]
        unit="suvbw",  # type: ignore[arg-type]
    )
    assert vol.modality is Modality.PT and vol.unit is Unit.SUVBW
    with pytest.raises(VolumeError, match=r"unit 'HU' does not suit modality PT: use one of"):
        Volume(
            np.zeros((1, 2, 2), dtype=np.float32),
            spacing_mm=(1, 1, 1),
            modality="PT",  # type: ignore[arg-type]
            unit="HU",  # type: ignore[arg-type]
        )
    with pytest.raises(VolumeError, match=r"modality must be one of .* got 'XR'"):
        Volume(
            np.zeros((1, 2, 2), dtype=np.float32),
            spacing_mm=(1, 1, 1),
            modality="XR",  # type: ignore[arg-type]
            unit="HU",  # type: ignore[arg-type]
        )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"array": np.zeros((2, 2))}, r"array must be 3D \(z, y, x\).*got shape \(2, 2\)"),
        ({"spacing_mm": (0.0, 1.0, 1.0)}, r"spacing_mm must be three positive numbers.*millimetres"),
        ({"spacing_mm": (1.0, 1.0)}, r"spacing_mm must be three finite numbers"),
        ({"direction": np.eye(3) * 2}, r"direction must be orthonormal.*not a scaled affine"),
        ({"origin_mm": (0.0, float("nan"), 0.0)}, r"origin_mm must be three finite numbers"),
    ],
)
def test_invalid_geometry_is_refused_with_the_fix(kwargs: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {"array": np.zeros((2, 2, 2)), "spacing_mm": (1.0, 1.0, 1.0)} | kwargs
    with pytest.raises(VolumeError, match=message):
        Volume(**args)


def test_non_finite_values_raise_numeric_error() -> None:
    arr = np.zeros((2, 2, 2), dtype=np.float32)
    arr[1, 1, 1] = np.nan
    with pytest.raises(NumericError, match="1 NaN or infinite"):
        Volume(arr, spacing_mm=(1, 1, 1))
    with pytest.raises(NumericError, match="beyond float32 range"):
        Volume(np.full((1, 1, 1), 1e300), spacing_mm=(1, 1, 1))


def test_with_array_keeps_grid_and_refuses_other_shapes() -> None:
    vol = Volume(
        np.zeros((2, 3, 4), dtype=np.float32), spacing_mm=(1, 2, 3), modality=Modality.MR, unit=Unit.MR_AU
    )
    ct = vol.with_array(np.ones((2, 3, 4)), modality="CT", unit="HU")
    assert ct.same_grid(vol) and ct.modality is Modality.CT and float(ct.array.sum()) == 24.0
    with pytest.raises(VolumeError, match="resample onto the grid first"):
        vol.with_array(np.ones((2, 3, 5)))


def test_same_grid_detects_a_shift() -> None:
    a = Volume(np.zeros((2, 3, 4), dtype=np.float32), spacing_mm=(1, 1, 1))
    b = Volume(np.zeros((2, 3, 4), dtype=np.float32), spacing_mm=(1, 1, 1), origin_mm=(0, 0, 0.01))
    assert not a.same_grid(b)
    assert a.same_grid(b, atol_mm=0.02)


def test_callers_array_stays_writable_and_volume_stays_frozen() -> None:
    arr = np.zeros((2, 2, 2), dtype=np.float32)
    vol = Volume(arr, spacing_mm=(1, 1, 1))
    arr[0, 0, 0] = 1.0  # the caller's array is not frozen by the Volume
    assert not vol.array.flags.writeable
