"""Validation for physicists: gamma index, image metrics, RT dose reading, reports.

Heavy or optional dependencies (numba, matplotlib) are imported only when used.
"""

from __future__ import annotations

from service.validation.gamma import (
    CriterionResult,
    GammaCriterion,
    GammaOptions,
    GammaResult,
    Normalisation,
    gamma,
    gamma_volumes,
)

__all__ = [
    "CriterionResult",
    "GammaCriterion",
    "GammaOptions",
    "GammaResult",
    "Normalisation",
    "gamma",
    "gamma_volumes",
]
