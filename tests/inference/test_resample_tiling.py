"""Properties of the in-plane resampling and of the tiling plan."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from service.inference import tiling
from service.inference.resample import (
    mask_to_input_grid,
    model_grid_volume,
    model_size,
    to_input_grid,
    to_model_grid,
)
from service.volume import Volume

spacings = st.floats(0.3, 3.0, allow_nan=False)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 40), st.integers(1, 40), spacings, spacings, spacings, spacings)
def test_resampling_keeps_constants_and_shapes(
    ny: int, nx: int, sx: float, sy: float, tx: float, ty: float
) -> None:
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
        total[win.y0 : win.y0 + win.height, win.x0 : win.x0 + win.width] += weights
    assert total.min() > 0


def test_model_grid_volume_shares_the_centre_and_axes_of_the_input() -> None:
    angle = np.deg2rad(20.0)
    c, s = np.cos(angle), np.sin(angle)
    direction = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    source = Volume(np.zeros((3, 50, 70), np.float32), (0.5, 0.8, 3.0), (10.0, -20.0, 5.0), direction)
    array = to_model_grid(source.array, (0.5, 0.8), (2.0, 2.0))
    grid = model_grid_volume(source, array, (2.0, 2.0))
    assert grid.shape == (3, 20, 18) and grid.spacing_mm == (2.0, 2.0, 3.0)
    np.testing.assert_array_equal(grid.direction, source.direction)

    def centre(v: Volume) -> np.ndarray:
        return v.index_to_lps([(n - 1) / 2.0 for n in v.size_xyz])

    np.testing.assert_allclose(centre(grid), centre(source), atol=1e-9)
    # Model voxel (0, 0) sits where to_model_grid samples it: input index (n-1)/2 - (m-1)/2 * t/s.
    first = source.index_to_lps([(70 - 1) / 2 - (18 - 1) / 2 * 4.0, (50 - 1) / 2 - (20 - 1) / 2 * 2.5, 0.0])
    np.testing.assert_allclose(grid.index_to_lps([0.0, 0.0, 0.0]), first, atol=1e-9)


def test_mask_to_input_grid_takes_the_nearest_model_voxel() -> None:
    mask = np.zeros((1, 4, 5), bool)
    mask[0, 1:3, 1:4] = True
    # Input at 0.5 mm, model at 2 mm: 16 x 20 input pixels; input pixel i sits at model
    # coordinate (i - 1.5) / 4, so model voxel 1 covers input pixels 4..7 (coordinates 0.625..1.375).
    out = mask_to_input_grid(mask, (0.5, 0.5), (2.0, 2.0), (16, 20))
    assert out.shape == (1, 16, 20)
    rows = np.flatnonzero(out[0].any(axis=1))
    cols = np.flatnonzero(out[0].any(axis=0))
    assert (rows[0], rows[-1], cols[0], cols[-1]) == (4, 11, 4, 15)
    assert out[0, 4:12, 4:16].all() and out.sum() == 8 * 12
