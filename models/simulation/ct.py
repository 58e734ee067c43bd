"""CT simulator: label map -> HU with partial volume, tissue variability and correlated noise.

Model, per subject:

1. each tissue's mean HU is drawn around its table value (:mod:`.tissues`):
   ``mu_t = hu_mean_t + tissue_spread * 0.5 * hu_sd_t * N(0, 1)`` (between-subject spread);
2. a smooth texture field (correlation a few mm) adds ``texture_fraction * hu_sd_t`` of
   within-tissue variation;
3. each voxel is the average of its sub-voxel samples (partial volume, see :class:`Anatomy`);
4. quantum noise: white Gaussian noise blurred in-plane by ``noise_correlation_mm`` (the
   reconstruction kernel) and rescaled to ``noise_sd_hu``;
5. rounded to integers and clipped to the 12-bit CT range [-1024, 3071] HU.

Not modelled: beam hardening, scatter, streaks, metal, ring artefacts, the couch, noise that
grows with patient size (all of which CBCT adds in :mod:`.cbct`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from models.simulation.anatomy import Anatomy
from models.simulation.fields import correlated_noise
from models.simulation.tissues import hu_table
from service.errors import NumericError, OptionError

FloatArray = npt.NDArray[np.float32]

#: Stored CT range (HU): 12-bit with rescale intercept -1024.
HU_MIN, HU_MAX = -1024.0, 3071.0


@dataclass(frozen=True)
class CTParams:
    """CT acquisition and tissue-variability parameters.

    Parameters
    ----------
    noise_sd_hu
        Noise standard deviation in a uniform region (HU), 0 for a noise-free image.
    noise_correlation_mm
        In-plane Gaussian correlation length (sigma, mm) of the noise (reconstruction kernel).
    tissue_spread
        Scale of the between-subject spread of tissue means (1 = half the table SD; 0 = table means).
    texture_fraction
        Within-tissue texture SD as a fraction of the table SD (0 = flat tissues).
    texture_correlation_mm
        Correlation length (sigma, mm) of the texture field.
    """

    noise_sd_hu: float = 15.0
    noise_correlation_mm: float = 1.0
    tissue_spread: float = 1.0
    texture_fraction: float = 0.4
    texture_correlation_mm: float = 3.0

    def __post_init__(self) -> None:
        checks = {
            "noise_sd_hu": (self.noise_sd_hu, 0.0, 200.0),
            "noise_correlation_mm": (self.noise_correlation_mm, 0.0, 5.0),
            "tissue_spread": (self.tissue_spread, 0.0, 3.0),
            "texture_fraction": (self.texture_fraction, 0.0, 2.0),
            "texture_correlation_mm": (self.texture_correlation_mm, 0.5, 20.0),
        }
        for name, (value, lo, hi) in checks.items():
            if not (np.isfinite(value) and lo <= value <= hi):
                raise OptionError(
                    f"CTParams.{name} must be in [{lo}, {hi}], got {value!r}: pass a value in range."
                )

    @classmethod
    def random(cls, rng: np.random.Generator) -> CTParams:
        """Realistic random acquisition: noise 10-25 HU SD, in-plane noise correlation 0.8-1.6 mm."""
        return cls(
            noise_sd_hu=float(rng.uniform(10.0, 25.0)),
            noise_correlation_mm=float(rng.uniform(0.8, 1.6)),
        )


def simulate_ct(anatomy: Anatomy, rng: np.random.Generator, params: CTParams | None = None) -> FloatArray:
    """Simulate a CT of ``anatomy``.

    Parameters
    ----------
    anatomy
        The subject (sub-voxel tissue labels on the output grid).
    rng
        Random generator for tissue values, texture and noise.
    params
        Acquisition parameters; default :class:`CTParams` ().

    Returns
    -------
    numpy.ndarray
        float32 HU, shape ``(z, y, x)`` of the anatomy's grid, integer-valued in [-1024, 3071].
    """
    params = params or CTParams()
    mean, sd = hu_table()
    tissue_mean = mean + params.tissue_spread * 0.5 * sd * rng.standard_normal(mean.shape).astype(np.float32)
    image = anatomy.average(tissue_mean)
    spacing_x, spacing_y, spacing_z = anatomy.grid.spacing_mm
    if params.texture_fraction > 0:
        corr = params.texture_correlation_mm
        texture = correlated_noise(rng, anatomy.shape, (corr / spacing_z, corr / spacing_y, corr / spacing_x))
        image += params.texture_fraction * anatomy.average(sd) * texture
    if params.noise_sd_hu > 0:
        corr = params.noise_correlation_mm
        noise = correlated_noise(rng, anatomy.shape, (0.0, corr / spacing_y, corr / spacing_x))
        image += np.float32(params.noise_sd_hu) * noise
    if not np.all(np.isfinite(image)):
        raise NumericError("simulated CT has NaN or infinite values: check CTParams and the tissue table.")
    return np.asarray(np.clip(np.rint(image), HU_MIN, HU_MAX), dtype=np.float32)
