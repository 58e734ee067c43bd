"""Validation for physicists: gamma index, image metrics, RT dose reading, a simple dose engine, reports.

Optional dependencies are imported only when used: numba (the compiled gamma kernel; a
pure-NumPy kernel gives the same values without it) and matplotlib (HTML reports).
"""

from __future__ import annotations

from service.validation.dose_calc import calculate_dose
from service.validation.dose_compare import DoseComparison, compare_dose_on_ct_and_sct
from service.validation.dose_io import read_dose
from service.validation.dose_plan import Beam, BeamModel, BeamPlan
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
    "Beam",
    "BeamModel",
    "BeamPlan",
    "CriterionResult",
    "DoseComparison",
    "GammaCriterion",
    "GammaOptions",
    "GammaResult",
    "ImageMetrics",
    "Normalisation",
    "body_mask",
    "calculate_dose",
    "compare_dose_on_ct_and_sct",
    "gamma",
    "gamma_volumes",
    "image_metrics",
    "read_dose",
]
