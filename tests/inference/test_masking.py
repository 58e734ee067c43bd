"""Body masks on small phantoms."""

from __future__ import annotations

import numpy as np
import pytest

from service.errors import InputError
from service.inference.masking import MaskKind, MaskSpec, body_mask, parse_mask_spec
from service.inference.spec import SpecError
from service.volume import Modality, Unit, Volume


def phantom(background: float, body: float, hole: float) -> tuple[np.ndarray, np.ndarray]:
    """An elliptic body with an internal hole, and a detached blob (e.g. the couch)."""
    _z, y, x = np.mgrid[0:4, 0:32, 0:40]
    body_region = ((y - 14) / 10.0) ** 2 + ((x - 20) / 15.0) ** 2 <= 1.0
    hole_region = ((y - 14) / 3.0) ** 2 + ((x - 20) / 4.0) ** 2 <= 1.0
    array = np.full(x.shape, background, np.float32)
    array[body_region] = body
    array[hole_region] = hole
    array[:, 29:31, 5:35] = body  # detached, smaller than the body
    return array, body_region


def test_ct_threshold_keeps_the_body_fills_holes_drops_the_couch() -> None:
    array, expected = phantom(-1000.0, 30.0, -900.0)
    vol = Volume(array, spacing_mm=(1, 1, 2))
    mask = body_mask(vol, MaskSpec(MaskKind.HU_THRESHOLD, threshold_hu=-500))
    np.testing.assert_array_equal(mask, expected)


def test_mr_relative_threshold() -> None:
    array, expected = phantom(2.0, 400.0, 5.0)
    vol = Volume(array, spacing_mm=(1, 1, 2), modality=Modality.MR, unit=Unit.MR_AU)
    spec = parse_mask_spec(
        None, {"kind": "relative_threshold", "reference_percentile": 98, "fraction": 0.1}, "MR"
    )
    np.testing.assert_array_equal(body_mask(vol, spec), expected)


def test_pet_smoothed_threshold_is_a_filled_smooth_region() -> None:
    array, expected = phantom(0.0, 1.0, 0.0)
    array[:, 29:31] = 0.0
    vol = Volume(array, spacing_mm=(2, 2, 2), modality=Modality.PT, unit=Unit.SUVBW)
    mask = body_mask(vol, MaskSpec(MaskKind.SMOOTHED_THRESHOLD, sigma_mm=2.0, threshold=0.5))
    # Smoothing moves the edge by at most a voxel; the hole is filled.
    assert mask[:, 14, 20].all()
    disagree = np.count_nonzero(mask != expected)
    assert 0 < disagree <= 0.1 * expected.sum()


def test_empty_mask_and_wrong_modality_are_refused() -> None:
    vol = Volume(np.full((2, 4, 4), -1000.0), spacing_mm=(1, 1, 1))
    with pytest.raises(InputError, match="empty"):
        body_mask(vol, MaskSpec(MaskKind.HU_THRESHOLD, threshold_hu=-500))
    mr = Volume(np.ones((2, 4, 4), np.float32), spacing_mm=(1, 1, 1), modality=Modality.MR, unit=Unit.MR_AU)
    with pytest.raises(InputError, match="needs a CT volume, got MR"):
        body_mask(mr, MaskSpec(MaskKind.HU_THRESHOLD, threshold_hu=-500))
    with pytest.raises(SpecError, match="is for CT inputs"):
        parse_mask_spec(None, {"kind": "hu_threshold", "threshold_hu": -500}, "PT")


def test_slicewise_fill_equals_scipy_per_slice() -> None:
    from scipy import ndimage

    from service.inference.masking import fill_holes_slicewise

    rng = np.random.default_rng(7)
    for density in (0.3, 0.5, 0.7):
        mask = rng.random((3, 23, 17)) < density
        expected = np.stack([ndimage.binary_fill_holes(s) for s in mask])
        np.testing.assert_array_equal(fill_holes_slicewise(mask), expected)
    assert fill_holes_slicewise(np.ones((2, 3, 3), bool)).all()
