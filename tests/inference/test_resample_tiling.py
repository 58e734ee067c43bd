"""Properties of the in-plane resampling and of the tiling plan."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from service.inference import tiling
from service.inference.resample import model_size, to_input_grid, to_model_grid

spacings = st.floats(0.3, 3.0, allow_nan=False)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 40), st.integers(1, 40), spacings, spacings, spacings, spacings)
def test_resampling_keeps_constants_and_shapes(ny: int, nx: int, sx: float, sy: float, tx: float,
                                               ty: float) -> None:
    x = np.full((2, ny, nx), 37.5, np.float32)
    model = to_model_grid(x, (sx, sy), (tx, ty))
    assert model.shape == (2, model_size(ny, sy, ty), model_size(nx, sx, tx))
    back = to_input_grid(model, (sx, sy), (tx, ty), (ny, nx))
    assert back.shape == x.shape
    np.testing.assert_allclose(back, 37.5, rtol=1e-6)


@settings(max_examples=40, deadline=None)
@given(st.integers(3, 40), spacings, spacings)
def test_resampling_reproduces_ramps_where_no_clamping_occurs(n: int, s: float, t: float) -> None:
    ramp = np.arange(n, dtype=np.float32) * s * 2.0 - 5.0  # 2 units per mm
    x = np.broadcast_to(ramp, (1, 2, n)).copy()
    model = to_model_grid(x, (s, 1.0), (t, 1.0))
    m = model.shape[2]
    # Model-grid positions in mm from the input's first sample; interior ones lie inside it.
    pos = (n - 1) * s / 2 + (np.arange(m) - (m - 1) / 2) * t
    inside = (pos >= 0) & (pos <= (n - 1) * s)
    np.testing.assert_allclose(model[0, 0, inside], pos[inside] * 2.0 - 5.0, rtol=0, atol=1e-3)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 200), st.integers(1, 200), st.integers(16, 128), st.data())
def test_windows_cover_every_pixel_with_positive_weights(
    h: int, w: int, size: int, data: st.DataObject
) -> None:
    overlap = data.draw(st.integers(0, size - 1))
    wins = tiling.windows(h, w, size, overlap)
    total = np.zeros((h, w))
    for win in wins:
        assert win.y0 >= 0 and win.y0 + win.height <= h and win.x0 >= 0 and win.x0 + win.width <= w
        assert win.height == min(size, h) and win.width == min(size, w)
        weights = tiling.weights(win, overlap, data.draw(st.sampled_from(["linear", "cosine"])))
        assert weights.min() > 0
        total[win.y0:win.y0 + win.height, win.x0:win.x0 + win.width] += weights
    assert total.min() > 0
