"""MR simulator: T1/T2/PD per tissue -> spin-echo or spoiled gradient-echo magnitude image.

Model, per subject:

1. relaxation times and proton density per tissue at 1.5 or 3 T (:mod:`.tissues`), varied by
   ``tissue_spread`` x (5 % T1/T2, 3 % PD) between subjects;
2. signal per tissue from the steady-state equations (times in ms):

   - spin echo: ``S = PD (1 - 2 exp(-(TR - TE/2)/T1) + exp(-TR/T1)) exp(-TE/T2)``
   - spoiled gradient echo: ``S = PD sin(a) (1 - E1) / (1 - cos(a) E1) exp(-TE/T2*)``, ``E1 = exp(-TR/T1)``,
     ``1/T2* = 1/T2 + R2'`` with a random reversible rate R2' (approximation: no tabulated T2*);

3. voxel signal = mean over sub-voxel samples (partial volume), times a 3 % smooth texture;
4. a smooth multiplicative receive-bias field ``exp(b G)`` (G smooth, unit SD);
5. Rician noise: ``|S + n1 + i n2|``, ``n ~ N(0, sigma)``, sigma = mean body signal / SNR;
6. vendor scaling: ``round(scale S + offset)`` clipped to 12 bits [0, 4095], the 99.5th
   percentile mapped to a random 1200-4000.

Cortical bone (T2* < 1 ms, PD 0.15) and air (PD 0) are both dark at TE >= 2 ms: the
ambiguity a synthetic-CT model must resolve from context.

Not modelled: k-space sampling and Gibbs ringing, chemical shift and fat suppression,
flow, susceptibility distortion, motion, B1 transmit inhomogeneity, slice profile.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from models.simulation.anatomy import Anatomy
from models.simulation.fields import correlated_noise, smooth_field
from models.simulation.tissues import check_field_strength, relaxation_table
from service.errors import NumericError, OptionError

FloatArray = npt.NDArray[np.float32]

#: Stored MR range (12-bit).
MR_MAX = 4095.0


class MRWeighting(enum.StrEnum):
    """Contrast weighting."""

    T1 = "t1"
    T2 = "t2"

    @classmethod
    def parse(cls, value: MRWeighting | str) -> MRWeighting:
        """Accept a member or its name (case-insensitive)."""
        if isinstance(value, MRWeighting):
            return value
        try:
            return cls(str(value).strip().lower())
        except ValueError:
            raise OptionError(f"weighting must be 't1' or 't2', got {value!r}: pass one of these.") from None


class MRSequence(enum.StrEnum):
    """Pulse sequence family."""

    SPIN_ECHO = "se"
    GRADIENT_ECHO = "gre"

    @classmethod
    def parse(cls, value: MRSequence | str) -> MRSequence:
        """Accept a member or its value ('se', 'gre'), case-insensitive."""
        if isinstance(value, MRSequence):
            return value
        try:
            return cls(str(value).strip().lower())
        except ValueError:
            raise OptionError(f"sequence must be 'se' or 'gre', got {value!r}: pass one of these.") from None


@dataclass(frozen=True)
class MRParams:
    """MR acquisition parameters (times in ms, angles in degrees, field in tesla).

    ``snr`` is the mean body signal over the noise SD; ``bias_amplitude`` the SD of the log bias
    field; ``target_max`` where the 99.5th percentile lands after vendor scaling, plus ``offset``.
    """

    weighting: MRWeighting = MRWeighting.T1
    sequence: MRSequence = MRSequence.SPIN_ECHO
    b0_tesla: float = 1.5
    tr_ms: float = 500.0
    te_ms: float = 12.0
    flip_deg: float = 90.0
    r2prime_per_s: float = 10.0
    snr: float = 40.0
    bias_amplitude: float = 0.15
    target_max: float = 2500.0
    offset: float = 0.0
    tissue_spread: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "weighting", MRWeighting.parse(self.weighting))
        object.__setattr__(self, "sequence", MRSequence.parse(self.sequence))
        object.__setattr__(self, "b0_tesla", check_field_strength(self.b0_tesla))
        checks = {
            "tr_ms": (self.tr_ms, 1.0, 20000.0),
            "te_ms": (self.te_ms, 0.5, 500.0),
            "flip_deg": (self.flip_deg, 1.0, 180.0),
            "r2prime_per_s": (self.r2prime_per_s, 0.0, 200.0),
            "snr": (self.snr, 1.0, 1e6),
            "bias_amplitude": (self.bias_amplitude, 0.0, 1.0),
            "target_max": (self.target_max, 100.0, MR_MAX),
            "offset": (self.offset, 0.0, 500.0),
            "tissue_spread": (self.tissue_spread, 0.0, 3.0),
        }
        for name, (value, lo, hi) in checks.items():
            if not (np.isfinite(value) and lo <= value <= hi):
                raise OptionError(
                    f"MRParams.{name} must be in [{lo}, {hi}], got {value!r}: pass a value in range."
                )
        if self.te_ms >= self.tr_ms:
            raise OptionError(
                f"MRParams.te_ms ({self.te_ms}) must be shorter than tr_ms ({self.tr_ms}): "
                "lower TE or raise TR."
            )

    @classmethod
    def random(cls, rng: np.random.Generator, weighting: MRWeighting | str | None = None) -> MRParams:
        """Random clinical protocol of the given (else random) weighting, 1.5 or 3 T.

        T1: SE TR 400-700 / TE 8-20, or spoiled GRE TR 6-25 / TE 2-5 / flip 8-25 deg.
        T2: (turbo) SE TR 2500-6000 / TE 80-120, or GRE TR 400-800 / TE 15-30 / flip 15-30 deg.
        """
        w = MRWeighting.parse(weighting) if weighting is not None else MRWeighting(rng.choice(["t1", "t2"]))
        sequence = MRSequence.GRADIENT_ECHO if rng.random() < 0.5 else MRSequence.SPIN_ECHO
        u = rng.uniform
        if w is MRWeighting.T1 and sequence is MRSequence.SPIN_ECHO:
            tr, te, flip = u(400, 700), u(8, 20), 90.0
        elif w is MRWeighting.T1:
            tr, te, flip = u(6, 25), u(2, 5), u(8, 25)
        elif sequence is MRSequence.SPIN_ECHO:
            tr, te, flip = u(2500, 6000), u(80, 120), 90.0
        else:
            tr, te, flip = u(400, 800), u(15, 30), u(15, 30)
        return cls(
            weighting=w,
            sequence=sequence,
            b0_tesla=1.5 if rng.random() < 0.5 else 3.0,
            tr_ms=float(tr),
            te_ms=float(te),
            flip_deg=float(flip),
            r2prime_per_s=float(u(5, 20)),
            snr=float(u(20, 60)),
            bias_amplitude=float(u(0.05, 0.25)),
            target_max=float(u(1200, 4000)),
            offset=float(u(0, 30)),
        )


def tissue_signal(
    params: MRParams, t1_ms: npt.ArrayLike, t2_ms: npt.ArrayLike, pd: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """Noise-free magnitude signal (PD units) of tissues with the given T1, T2 (ms) and PD."""
    t1 = np.asarray(t1_ms, dtype=np.float64)
    t2 = np.asarray(t2_ms, dtype=np.float64)
    rho = np.asarray(pd, dtype=np.float64)
    tr, te = params.tr_ms, params.te_ms
    if params.sequence is MRSequence.SPIN_ECHO:
        longitudinal = 1.0 - 2.0 * np.exp(-(tr - te / 2.0) / t1) + np.exp(-tr / t1)
        signal = rho * np.abs(longitudinal) * np.exp(-te / t2)
    else:
        alpha = np.deg2rad(params.flip_deg)
        e1 = np.exp(-tr / t1)
        t2star = 1.0 / (1.0 / t2 + params.r2prime_per_s / 1000.0)
        signal = rho * np.sin(alpha) * (1.0 - e1) / (1.0 - np.cos(alpha) * e1) * np.exp(-te / t2star)
    return np.asarray(signal)


def simulate_mr(anatomy: Anatomy, rng: np.random.Generator, params: MRParams | None = None) -> FloatArray:
    """Simulate an MR magnitude image of ``anatomy``.

    Returns
    -------
    numpy.ndarray
        float32 arbitrary units (12-bit integers in [0, 4095]), shape ``(z, y, x)``.
    """
    params = params or MRParams()
    t1_table, t2_table, pd_table = relaxation_table(params.b0_tesla)
    spread = params.tissue_spread
    t1 = t1_table * (1 + 0.05 * spread * rng.standard_normal(t1_table.shape))
    t2 = t2_table * (1 + 0.05 * spread * rng.standard_normal(t2_table.shape))
    pd = np.clip(pd_table * (1 + 0.03 * spread * rng.standard_normal(pd_table.shape)), 0.0, 1.0)
    signal = anatomy.average(tissue_signal(params, t1, t2, pd))
    spacing_x, spacing_y, spacing_z = anatomy.grid.spacing_mm
    texture = correlated_noise(rng, anatomy.shape, (3.0 / spacing_z, 3.0 / spacing_y, 3.0 / spacing_x))
    signal *= 1.0 + 0.03 * spread * texture
    body_mean = float(signal[anatomy.body].mean()) if anatomy.body.any() else float(signal.mean())
    if params.bias_amplitude > 0:
        signal *= np.exp(np.float32(params.bias_amplitude) * smooth_field(rng, anatomy.shape, (2, 3, 3)))
    sigma = np.float32(max(body_mean, 1e-6) / params.snr)
    real = signal + sigma * rng.standard_normal(signal.shape, dtype=np.float32)
    imag = sigma * rng.standard_normal(signal.shape, dtype=np.float32)
    magnitude = np.sqrt(real * real + imag * imag)
    top = float(np.percentile(magnitude, 99.5))
    if not np.isfinite(top) or top <= 0:
        raise NumericError(
            f"simulated MR has no positive signal (99.5th percentile {top}): check MRParams (TR, TE, flip)."
        )
    scaled = magnitude * np.float32(params.target_max / top) + np.float32(params.offset)
    if not np.all(np.isfinite(scaled)):
        raise NumericError("simulated MR has NaN or infinite values: check MRParams.")
    return np.asarray(np.clip(np.rint(scaled), 0.0, MR_MAX), dtype=np.float32)
