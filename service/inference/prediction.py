"""The slice-wise 2.5D prediction of one volume by one model card (no ONNX Runtime here).

:func:`predict` takes a ``run_batch`` callable mapping a float32 batch ``(B, C, H, W)`` in
network units to ``(B, 1, H, W)``; the engine passes an ONNX Runtime session, tests may pass
any function. Steps, in this order:

1. preprocess: check the input's modality and unit against the card; re-index a non-axial
   volume losslessly to axial LPS order (:mod:`service.inference.orientation`); resample
   in-plane to the card's spacing (linear, in native units); on that model grid -- the grid
   the model was trained on -- compute the body mask and fit and apply the input
   normalisation; pad rows and columns symmetrically to a multiple of ``size_multiple`` with
   the normalisation's pad value (-1 for linear kinds, 0 for suv_log). Masking and fitting
   on the model grid rather than the input grid cost 16 times fewer voxels for a 0.5 mm
   input and a 2 mm model, and match training, whose data are on the model grid.
2. inference: output slice ``k`` from input slices ``k - c//2 .. k + c//2`` stacked as
   channels (indices clamped to the volume: edge slices replicated); ``batch_size`` slices
   per run; tiles with blending when the padded image exceeds the card's tile size.
   ``cancel`` is checked before every run.
3. postprocess: crop the padding; inverse output normalisation; resample back onto the
   input grid (linear, in native units); clip to the card's range; the card's background
   outside the body mask (brought to the input grid by nearest neighbour, so its outline has
   the model grid's resolution); undo the re-indexing; refuse NaN/inf.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from service.errors import CancelledError, InputError, NumericError
from service.inference import tiling
from service.inference.card import ModelCard
from service.inference.masking import body_mask
from service.inference.normalisation import denormalise, fit_normalisation, normalise
from service.inference.orientation import from_canonical, plan, to_canonical
from service.inference.resample import (
    mask_to_input_grid,
    model_grid_volume,
    model_size,
    to_input_grid,
    to_model_grid,
)
from service.volume import Volume

FloatArray = npt.NDArray[np.float32]
RunBatch = Callable[[FloatArray], FloatArray]
Progress = Callable[[str, float], None]

#: Obliquity (degrees from the nearest patient axis) above which a note is returned.
OBLIQUE_NOTE_DEG = 5.0

#: Largest model-grid size (pixels per in-plane axis) accepted; beyond it memory would explode.
MAX_MODEL_GRID_PX = 4096


def check_input(volume: Volume, card: ModelCard) -> None:
    """Refuse a volume whose modality or unit is not the card's input (no conversion)."""
    want = card.input
    if (volume.modality, volume.unit) != (want.modality, want.unit):
        raise InputError(
            f"model {card.name!r} v{card.version} expects {want.modality.value} in {want.unit.value}, "
            f"got {volume.modality.value} in {volume.unit.value}: pass a {want.modality.value} volume in "
            f"{want.unit.value} or choose a model for this input."
        )


def pad_amounts(n: int, multiple: int) -> tuple[int, int]:
    """Padding (before, after) that makes ``n`` a multiple of ``multiple``; training pads the same way."""
    total = -n % multiple
    return total // 2, total - total // 2


def _check_batch(y: FloatArray, shape: tuple[int, ...], card: ModelCard) -> FloatArray:
    y = np.asarray(y)
    if y.shape != shape:
        raise NumericError(
            f"model {card.name!r} v{card.version} returned shape {y.shape}, expected {shape}: "
            "the ONNX model does not match its card; re-export it."
        )
    if not np.all(np.isfinite(y)):
        raise NumericError(
            f"model {card.name!r} v{card.version} returned {int(np.count_nonzero(~np.isfinite(y)))} "
            "NaN/infinite value(s): the model is numerically unstable on this input; report it."
        )
    return np.asarray(y, dtype=np.float32)


def _check_model_grid(work: Volume, card: ModelCard) -> None:
    (sx, sy, _), (tx, ty) = work.spacing_mm, card.in_plane_spacing_mm
    _, ny, nx = work.shape
    size = (model_size(nx, sx, tx), model_size(ny, sy, ty))
    if max(size) > MAX_MODEL_GRID_PX:
        raise InputError(
            f"resampling the {nx}x{ny} slices at {sx:g}x{sy:g} mm to the model's {tx:g}x{ty:g} mm gives "
            f"{size[0]}x{size[1]} pixels, above the limit {MAX_MODEL_GRID_PX}: check the input's pixel "
            "spacing, or crop the input."
        )


def _infer(
    padded: FloatArray,
    card: ModelCard,
    run_batch: RunBatch,
    batch_size: int,
    progress: Progress | None,
    cancel: threading.Event | None,
) -> FloatArray:
    nz, height, width = padded.shape
    half = card.context_slices // 2
    tile = card.tile
    if tile is not None and (height > tile.size_px or width > tile.size_px):
        wins = tiling.windows(height, width, tile.size_px, tile.overlap_px)
    else:
        wins = [tiling.Window(0, 0, height, width)]
    blended = len(wins) > 1
    out = np.zeros_like(padded)
    weight_sum = np.zeros((height, width), dtype=np.float32)
    weight_maps = []
    for win in wins:
        w = tiling.weights(win, tile.overlap_px, tile.blend) if blended and tile else None
        if w is not None:
            weight_sum[win.y0 : win.y0 + win.height, win.x0 : win.x0 + win.width] += w
        weight_maps.append(w)
    offsets = np.arange(-half, half + 1)
    total = -(-nz // batch_size) * len(wins)
    done = 0
    for b0 in range(0, nz, batch_size):
        b1 = min(nz, b0 + batch_size)
        index = np.clip(np.arange(b0, b1)[:, None] + offsets[None, :], 0, nz - 1)
        for win, w in zip(wins, weight_maps, strict=True):
            if cancel is not None and cancel.is_set():
                raise CancelledError(
                    f"translation cancelled after {done} of {total} inference run(s): nothing was written."
                )
            rows = slice(win.y0, win.y0 + win.height)
            cols = slice(win.x0, win.x0 + win.width)
            x = np.ascontiguousarray(padded[:, rows, cols][index])
            y = _check_batch(run_batch(x), (b1 - b0, 1, win.height, win.width), card)[:, 0]
            if w is None:
                out[b0:b1, rows, cols] = y
            else:
                out[b0:b1, rows, cols] += y * w
            done += 1
            if progress is not None:
                progress("inference", done / total)
    if blended:
        out /= weight_sum
    return out


def predict(
    volume: Volume,
    card: ModelCard,
    run_batch: RunBatch,
    *,
    batch_size: int = 8,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    timings: dict[str, float] | None = None,
    notes: list[str] | None = None,
) -> Volume:
    """Translate ``volume`` with ``card``'s pre/post-processing around ``run_batch``.

    Returns a volume on the input's grid (same geometry and ``source``) with the card's output
    modality and unit. ``timings`` (if given) receives seconds per stage; ``notes`` (if given)
    receives messages for the user (re-indexing, obliquity).

    Raises
    ------
    InputError
        Wrong modality/unit, empty body mask, out-of-domain values.
    CancelledError
        ``cancel`` was set.
    NumericError
        The model produced NaN/inf or a wrong shape.
    """
    if batch_size < 1:
        raise InputError(f"batch_size must be >= 1, got {batch_size}: pass a positive number.")
    timings = {} if timings is None else timings
    t0 = time.perf_counter()
    check_input(volume, card)
    if progress is not None:
        progress("preprocess", 0.0)
    orientation = plan(volume.direction)
    work = to_canonical(volume, orientation)
    if notes is not None and not orientation.identity:
        notes.append(
            f"input axes re-indexed losslessly to axial order for the model ({orientation.describe()})"
        )
    if notes is not None and orientation.obliquity_deg > OBLIQUE_NOTE_DEG:
        notes.append(
            f"input slices are {orientation.obliquity_deg:.1f} degrees oblique to the nearest patient axis; "
            "the model was trained on axial slices: review the result"
        )
    _check_model_grid(work, card)
    spacing_xy = (work.spacing_mm[0], work.spacing_mm[1])
    raw = to_model_grid(work.array, spacing_xy, card.in_plane_spacing_mm)
    resampled = raw is not work.array
    grid = model_grid_volume(work, raw, card.in_plane_spacing_mm) if resampled else work
    mask = body_mask(grid, card.body_mask)
    x = normalise(raw, fit_normalisation(card.input.normalisation, raw, mask))
    _, model_h, model_w = x.shape
    pad_y = pad_amounts(model_h, card.size_multiple)
    pad_x = pad_amounts(model_w, card.size_multiple)
    if any(pad_y + pad_x):
        x = np.pad(x, ((0, 0), pad_y, pad_x), constant_values=card.input.normalisation.pad_value)
    if progress is not None:
        progress("preprocess", 1.0)
    t1 = time.perf_counter()
    y = _infer(x, card, run_batch, batch_size, progress, cancel)
    t2 = time.perf_counter()
    if progress is not None:
        progress("postprocess", 0.0)
    y = y[:, pad_y[0] : pad_y[0] + model_h, pad_x[0] : pad_x[0] + model_w]
    y = denormalise(y, fit_normalisation(card.output.normalisation, y))
    y = to_input_grid(y, spacing_xy, card.in_plane_spacing_mm, work.shape[1:])
    if resampled:
        mask = mask_to_input_grid(mask, spacing_xy, card.in_plane_spacing_mm, work.shape[1:])
    y = np.clip(y, *card.output.clip_range)
    y[~mask] = card.output.background
    y = from_canonical(y, orientation)
    result = volume.with_array(y, modality=card.output.modality, unit=card.output.unit)
    t3 = time.perf_counter()
    if progress is not None:
        progress("postprocess", 1.0)
    timings.update(preprocess=t1 - t0, inference=t2 - t1, postprocess=t3 - t2, total=t3 - t0)
    return result
