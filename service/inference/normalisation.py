"""Intensity normalisation shared by training and serving (pure NumPy).

Three kinds, each with a forward map (native units -> network units) and its inverse:

``clip_linear`` {low, high}
    ``y = 2 (clip(x, low, high) - low) / (high - low) - 1``: [low, high] -> [-1, 1]. Inverse
    ``x = low + (y + 1) (high - low) / 2`` (exact on [low, high]). CT: low -1024, high 3071 HU.
``percentile`` {low_percentile, high_percentile, upper_bound}
    Per volume, ``p_lo`` and ``p_hi`` are the given percentiles (0-100) of the voxels *inside
    the body mask*; ``y = clip(2 (x - p_lo) / (p_hi - p_lo) - 1, -1, upper_bound)``. The upper
    tail is kept linearly up to ``upper_bound`` (> 1, normalised units), not clipped at 1.
    Inverse is exact on [p_lo, value mapped to upper_bound]. For MR (arbitrary units); it needs
    the per-volume statistics, so it can normalise inputs only.
``suv_log`` {scale}
    ``y = log1p(x / scale)`` for SUV ``x > -scale``; inverse ``x = scale * expm1(y)``, exact up
    to float rounding. No clipping. For PET in SUVbw, e.g. scale 1.

Arrays are float32 of any shape; statistics use the optional boolean ``mask`` of the same
shape. Values out of a map's domain raise :class:`InputError`, overflow :class:`NumericError`.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from service.errors import InputError, NumericError
from service.inference.spec import SpecError, Where

FloatArray = npt.NDArray[np.float32]
BoolArray = npt.NDArray[np.bool_]


class NormalisationKind(enum.StrEnum):
    """The normalisation maps (see the module docstring)."""

    CLIP_LINEAR = "clip_linear"
    PERCENTILE = "percentile"
    SUV_LOG = "suv_log"


@dataclass(frozen=True)
class NormalisationSpec:
    """A normalisation as a card states it; parameters not used by ``kind`` are ``None``."""

    kind: NormalisationKind
    low: float | None = None  # clip_linear, native units
    high: float | None = None  # clip_linear, native units
    low_percentile: float | None = None  # percentile, 0-100
    high_percentile: float | None = None  # percentile, 0-100
    upper_bound: float | None = None  # percentile, normalised units (> 1)
    scale: float | None = None  # suv_log, SUV

    @property
    def invertible_without_statistics(self) -> bool:
        """True when the inverse needs no per-volume statistics (usable on outputs)."""
        return self.kind is not NormalisationKind.PERCENTILE

    @property
    def pad_value(self) -> float:
        """The normalised value used to pad images: -1 (the low end) for linear kinds, 0 for suv_log."""
        return 0.0 if self.kind is NormalisationKind.SUV_LOG else -1.0


@dataclass(frozen=True)
class NormalisationParams:
    """A normalisation resolved for one volume: ``low``/``high`` are native-unit anchors."""

    kind: NormalisationKind
    low: float = -1.0
    high: float = 1.0
    upper_bound: float = 1.0
    scale: float = 1.0


def parse_normalisation(where: Where | None, obj: Mapping[str, Any]) -> NormalisationSpec:
    """Validate a normalisation object (``{"kind": ..., parameters}``) from a card."""
    where = where or Where("normalisation")
    if not isinstance(obj, Mapping):
        raise SpecError(f"{where.path} must be an object, got {obj!r}: fix the card.")
    kind_text = where.get(obj, "kind", str)
    try:
        kind = NormalisationKind(kind_text)
    except ValueError:
        allowed = [k.value for k in NormalisationKind]
        raise SpecError(f"{where.path}.kind must be one of {allowed}, got {kind_text!r}: fix it.") from None
    if kind is NormalisationKind.CLIP_LINEAR:
        where.keys(obj, required={"kind", "low", "high"})
        low, high = where.number(obj, "low"), where.number(obj, "high")
        if not low < high:
            raise SpecError(f"{where.path} needs low < high, got low={low}, high={high}: swap or fix them.")
        return NormalisationSpec(kind, low=low, high=high)
    if kind is NormalisationKind.PERCENTILE:
        where.keys(obj, required={"kind", "low_percentile", "high_percentile", "upper_bound"})
        lo, hi = where.number(obj, "low_percentile"), where.number(obj, "high_percentile")
        bound = where.number(obj, "upper_bound")
        if not 0 <= lo < hi <= 100:
            raise SpecError(
                f"{where.path} needs 0 <= low_percentile < high_percentile <= 100, got {lo}, {hi}: fix them."
            )
        if bound < 1:
            raise SpecError(f"{where.path}.upper_bound must be >= 1 (normalised units), got {bound}: fix it.")
        return NormalisationSpec(kind, low_percentile=lo, high_percentile=hi, upper_bound=bound)
    where.keys(obj, required={"kind", "scale"})
    scale = where.number(obj, "scale")
    if scale <= 0:
        raise SpecError(f"{where.path}.scale must be > 0 (SUV), got {scale}: e.g. 1.0.")
    return NormalisationSpec(kind, scale=scale)


def fit_normalisation(
    spec: NormalisationSpec, array: npt.ArrayLike, mask: BoolArray | None = None
) -> NormalisationParams:
    """Resolve ``spec`` for one volume (percentiles are taken inside ``mask`` when given).

    Raises
    ------
    InputError
        The mask is empty, or the volume is constant inside it (percentile kind).
    """
    if spec.kind is NormalisationKind.CLIP_LINEAR:
        assert spec.low is not None and spec.high is not None
        return NormalisationParams(spec.kind, low=spec.low, high=spec.high)
    if spec.kind is NormalisationKind.SUV_LOG:
        assert spec.scale is not None
        return NormalisationParams(spec.kind, scale=spec.scale)
    assert spec.low_percentile is not None and spec.high_percentile is not None
    assert spec.upper_bound is not None
    values = np.asarray(array, dtype=np.float32)
    if mask is not None:
        if mask.shape != values.shape:
            raise InputError(f"mask shape {mask.shape} differs from array shape {values.shape}: pass a mask.")
        values = values[mask]
    if values.size == 0:
        raise InputError(
            "percentile normalisation got an empty body mask: check the input modality and the "
            "card's body_mask threshold."
        )
    p_lo, p_hi = np.percentile(values, [spec.low_percentile, spec.high_percentile])
    if not float(p_hi) > float(p_lo):
        raise InputError(
            f"percentile normalisation found no contrast inside the body mask (p{spec.low_percentile}="
            f"{float(p_lo)}, p{spec.high_percentile}={float(p_hi)}): check that the input is an MR image."
        )
    return NormalisationParams(spec.kind, low=float(p_lo), high=float(p_hi), upper_bound=spec.upper_bound)


def _finite(result: FloatArray, what: str) -> FloatArray:
    if not np.all(np.isfinite(result)):
        bad = int(np.count_nonzero(~np.isfinite(result)))
        raise NumericError(
            f"{what} produced {bad} NaN/infinite value(s): check the model output range and the card's "
            "normalisation."
        )
    return result


def normalise(array: npt.ArrayLike, params: NormalisationParams) -> FloatArray:
    """Native units -> network units (float32, same shape). See the module docstring."""
    x = np.array(array, dtype=np.float32, copy=True)
    if params.kind is NormalisationKind.SUV_LOG:
        floor = -params.scale
        if x.size and float(x.min()) <= floor:
            raise InputError(
                f"suv_log normalisation needs SUV > {floor} (-scale), got minimum {float(x.min())}: "
                "check that the input is in SUVbw."
            )
        with np.errstate(all="ignore"):
            np.divide(x, np.float32(params.scale), out=x)
            np.log1p(x, out=x)
        return _finite(x, "suv_log normalisation")
    half = np.float32((params.high - params.low) / 2.0)
    if params.kind is NormalisationKind.CLIP_LINEAR:
        np.clip(x, params.low, params.high, out=x)
    with np.errstate(all="ignore"):
        x -= np.float32(params.low + (params.high - params.low) / 2.0)
        x /= half
    if params.kind is NormalisationKind.PERCENTILE:
        np.clip(x, -1.0, params.upper_bound, out=x)
    return _finite(x, f"{params.kind.value} normalisation")


def denormalise(array: npt.ArrayLike, params: NormalisationParams) -> FloatArray:
    """Network units -> native units (float32, same shape); the exact inverse of :func:`normalise`.

    Raises
    ------
    NumericError
        The input holds NaN/inf, or the result overflows float32.
    """
    y = np.array(array, dtype=np.float32, copy=True)
    _finite(y, "the model output")
    if params.kind is NormalisationKind.SUV_LOG:
        limit = math.log(np.finfo(np.float32).max / params.scale)
        if y.size and float(y.max()) >= limit:
            raise NumericError(
                f"suv_log inverse overflows: model output {float(y.max())} >= {limit}: "
                "the model output is out of range; check the model."
            )
        with np.errstate(all="ignore"):
            np.expm1(y, out=y)
            y *= np.float32(params.scale)
        return _finite(y, "suv_log inverse")
    with np.errstate(all="ignore"):
        y *= np.float32((params.high - params.low) / 2.0)
        y += np.float32(params.low + (params.high - params.low) / 2.0)
    return _finite(y, f"{params.kind.value} inverse")
