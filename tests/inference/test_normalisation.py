"""Normalisation maps: round trips, per-volume percentiles, domain and overflow errors."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from service.errors import InputError, NumericError
from service.inference.normalisation import (
    NormalisationKind,
    NormalisationParams,
    denormalise,
    fit_normalisation,
    normalise,
    parse_normalisation,
)
from service.inference.spec import SpecError

CT = NormalisationParams(NormalisationKind.CLIP_LINEAR, low=-1024.0, high=3071.0)


@settings(max_examples=50, deadline=None)
@given(arrays(np.float32, (3, 4, 5), elements=st.floats(-1024, 3071, width=32)))
def test_clip_linear_round_trip(x: np.ndarray) -> None:
    y = normalise(x, CT)
    assert y.min() >= -1.0 and y.max() <= 1.0
    np.testing.assert_allclose(denormalise(y, CT), x, rtol=0, atol=1e-3)


def test_clip_linear_maps_the_range_ends_and_clips() -> None:
    y = normalise(np.array([-2000.0, -1024.0, 3071.0, 5000.0]), CT)
    np.testing.assert_array_equal(y, [-1.0, -1.0, 1.0, 1.0])


@settings(max_examples=50, deadline=None)
@given(arrays(np.float32, (20,), elements=st.floats(-0.875, 60.0, width=32)))
def test_suv_log_round_trip(x: np.ndarray) -> None:
    params = NormalisationParams(NormalisationKind.SUV_LOG, scale=1.0)
    y = normalise(x, params)
    np.testing.assert_allclose(y, np.log1p(x.astype(np.float64)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(denormalise(y, params), x, rtol=1e-5, atol=1e-5)


def test_suv_log_refuses_values_at_or_below_minus_scale() -> None:
    params = NormalisationParams(NormalisationKind.SUV_LOG, scale=2.0)
    with pytest.raises(InputError, match=r"SUV > -2\.0"):
        normalise(np.array([1.0, -2.0]), params)


def test_suv_log_inverse_overflow_is_a_numeric_error() -> None:
    params = NormalisationParams(NormalisationKind.SUV_LOG, scale=1.0)
    with pytest.raises(NumericError, match="overflows"):
        denormalise(np.array([100.0], np.float32), params)
    with pytest.raises(NumericError, match="NaN"):
        denormalise(np.array([np.nan], np.float32), params)


def test_percentile_uses_the_mask_and_keeps_the_upper_tail_to_the_bound() -> None:
    spec = parse_normalisation(
        None, {"kind": "percentile", "low_percentile": 0, "high_percentile": 100, "upper_bound": 2.0}
    )
    x = np.array([0.0, 0.0, 100.0, 200.0, 300.0, 700.0], np.float32)
    mask = np.array([False, False, True, True, True, False])
    params = fit_normalisation(spec, x, mask)
    assert (params.low, params.high) == (100.0, 300.0)
    y = normalise(x, params)
    # 700 maps to 5 -> clipped at the stated bound 2; 0 maps to -2 -> clipped at -1.
    np.testing.assert_allclose(y, [-1.0, -1.0, -1.0, 0.0, 1.0, 2.0])
    inside = (x >= 100) & (x <= 400)
    np.testing.assert_allclose(denormalise(y, params)[inside], x[inside], atol=1e-4)


def test_percentile_refuses_an_empty_mask_and_no_contrast() -> None:
    spec = parse_normalisation(
        None, {"kind": "percentile", "low_percentile": 1, "high_percentile": 99, "upper_bound": 3}
    )
    with pytest.raises(InputError, match="empty body mask"):
        fit_normalisation(spec, np.ones(4), np.zeros(4, bool))
    with pytest.raises(InputError, match="no contrast"):
        fit_normalisation(spec, np.ones(4), np.ones(4, bool))


@pytest.mark.parametrize(
    ("obj", "field"),
    [
        ({"kind": "clip_linear", "low": 5, "high": 5}, "low < high"),
        ({"kind": "clip_linear", "low": 0}, "lacks required field(s) ['high']"),
        (
            {"kind": "percentile", "low_percentile": 1, "high_percentile": 99, "upper_bound": 0.5},
            "upper_bound",
        ),
        ({"kind": "suv_log", "scale": 0}, "scale must be > 0"),
        ({"kind": "zscore"}, "kind must be one of"),
        ({"kind": "suv_log", "scale": 1, "offset": 2}, "unknown field(s) ['offset']"),
    ],
)
def test_malformed_normalisation_names_the_field(obj: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_normalisation(None, obj)
    assert field in str(info.value)
