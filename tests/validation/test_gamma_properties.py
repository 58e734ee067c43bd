"""Properties of the gamma index that hold for any dose pair (hypothesis)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from service.validation.gamma import GammaOptions, gamma

_doses = arrays(np.float64, (9, 11), elements=st.floats(0.0, 10.0, allow_nan=False, width=32))
_AXES = (np.arange(9) * 2.0, np.arange(11) * 1.5)


@settings(max_examples=25, deadline=None)
@given(ref=_doses, ev=_doses, local=st.booleans())
def test_gamma_is_bounded_by_the_dose_difference_at_the_point(
    ref: np.ndarray, ev: np.ndarray, local: bool
) -> None:
    if ref.max() <= 0:
        ref = ref + 1.0
    opts = GammaOptions(criteria="3%/2mm", normalisation="local" if local else "global", cutoff_percent=20.0)
    res = gamma(_AXES, ref, _AXES, ev, opts)["3%/2mm"]
    evaluated = ~np.isnan(res.gamma_map)
    assert np.array_equal(evaluated, ref >= 0.2 * ref.max())
    tol = 0.03 * (ref if local else ref.max())
    gamma0 = np.minimum(np.abs(ev - ref) / np.where(tol > 0, tol, 1.0), opts.max_gamma)
    g = res.gamma_map[evaluated]
    assert np.all(g >= 0) and np.all(g <= gamma0[evaluated] + 1e-12) and np.all(g <= opts.max_gamma)
    assert res.pass_rate_percent == 100.0 * np.count_nonzero(g <= 1) / g.size


@settings(max_examples=15, deadline=None)
@given(ref=_doses, ev=_doses, scale=st.floats(0.01, 100.0))
def test_global_gamma_does_not_depend_on_the_dose_unit(ref: np.ndarray, ev: np.ndarray, scale: float) -> None:
    ref = ref + 0.5
    opts = GammaOptions(criteria="2%/3mm", cutoff_percent=10.0)
    a = gamma(_AXES, ref, _AXES, ev, opts)["2%/3mm"].gamma_map
    b = gamma(_AXES, ref * scale, _AXES, ev * scale, opts)["2%/3mm"].gamma_map
    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9)
