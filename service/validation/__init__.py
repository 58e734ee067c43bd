"""Validation for physicists: gamma index, image metrics, RT dose reading, reports.

Optional dependencies are imported only when used: numba (the compiled gamma kernel; a
pure-NumPy kernel gives the same values without it) and matplotlib (HTML reports).
"""

from __future__ import annotations

from service.validation.dose_io import read_dose
from service.validation.gamma import (
    CriterionResult,
    GammaCriterion,
    GammaOptions,
    GammaResult,
    Normalisation,
    gamma,
    gamma_volumes,
)
from service.validation.metrics import ImageMetrics, body_mask, image_metrics

__all__ = [
    "CriterionResult",
    "GammaCriterion",
    "GammaOptions",
    "GammaResult",
    "ImageMetrics",
    "Normalisation",
    "body_mask",
    "gamma",
    "gamma_volumes",
    "image_metrics",
    "read_dose",
]
