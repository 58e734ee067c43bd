"""HU -> relative electron density calibration."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from service.errors import NumericError, OptionError
from service.validation.hu_density import GENERIC_CURVE, HuDensityCurve, hu_to_relative_electron_density


def test_generic_curve_nodes_and_interpolation() -> None:
    out = hu_to_relative_electron_density([-1000.0, -800.0, 0.0, 60.0, 900.0]).density
    np.testing.assert_allclose(out, [0.001, 0.190, 1.0, 1.052, 1.456], rtol=1e-6)
    # halfway between the water and muscle nodes
    mid = hu_to_relative_electron_density([22.5]).density[0]
    assert mid == pytest.approx((1.000 + 1.043) / 2, rel=1e-6)
    dense = np.linspace(-1024, 3071, 2000)
    assert np.all(np.diff(hu_to_relative_electron_density(dense).density) >= 0)


def test_out_of_range_hu_are_clamped_counted_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    hu = np.array([[-3024.0, -2048.0, 0.0], [4000.0, 100.0, -1024.0]], dtype=np.float32)
    with caplog.at_level(logging.WARNING):
        result = hu_to_relative_electron_density(hu)
    assert result.density.shape == hu.shape and result.density.dtype == np.float32
    assert (result.voxels_below, result.voxels_above) == (2, 1)
    assert result.density[0, 0] == pytest.approx(0.001)
    assert result.density[1, 0] == pytest.approx(GENERIC_CURVE.relative_electron_density[-1])
    assert "clamped" in caplog.text


def test_refusals() -> None:
    with pytest.raises(NumericError, match="NaN"):
        hu_to_relative_electron_density([0.0, np.nan])
    with pytest.raises(OptionError, match="strictly increasing"):
        HuDensityCurve((0.0, 0.0), (1.0, 1.1), "bad")
    with pytest.raises(OptionError, match="non-decreasing"):
        HuDensityCurve((0.0, 100.0), (1.1, 1.0), "bad")
    with pytest.raises(OptionError, match="same length"):
        HuDensityCurve((0.0, 100.0, 200.0), (1.0, 1.1), "bad")
