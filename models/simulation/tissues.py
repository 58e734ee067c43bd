"""Tissue labels and their physical properties (CT, MR, FDG-PET), with literature sources.

The digital anatomy (:mod:`models.simulation.anatomy`) labels every voxel with one
:class:`Tissue`; the simulators turn labels into images through the tables here.

Sources (short keys used in the comments below):

- ``Buzug2008``: Buzug TM, *Computed Tomography*, Springer 2008, p. 475 (HU table: white
  matter 20-30, grey matter 37-45, fat -50 to -100, water 0, air -1000, bone 700-3000).
- ``Schneider2000``: Schneider W, Bortfeld T, Schlegel W, Phys Med Biol 45:459 (2000),
  HU of body tissues from ICRP compositions (adipose about -100, muscle about +40..+50,
  cortical bone > +1000).
- ``Stanisz2005``: Stanisz GJ et al., Magn Reson Med 54:507 (2005), T1/T2 at 1.5 T and 3 T.
- ``deBazelaire2004``: de Bazelaire CMJ et al., Radiology 230:652 (2004), pelvic and
  abdominal T1/T2 at 1.5 T and 3 T (prostate, muscle, fat, bone marrow).
- ``Kwan1999``: Kwan RK, Evans AC, Pike GB, IEEE Trans Med Imaging 18:1085 (1999),
  BrainWeb proton densities (CSF 1.0, GM 0.86, WM 0.77, fat 1.0).
- ``Lu2005``: Lu H et al., J Magn Reson Imaging 22:13 (2005), CSF T1 at 3 T (about 4.2 s).
- ``Reichert2005``: Reichert ILH et al., Magn Reson Imaging 23:611 (2005), cortical bone
  T2* about 0.4-0.5 ms (invisible at clinical echo times).
- ``Techawiboonwong2008``: Techawiboonwong A et al., Radiology 248:824 (2008), cortical
  bone water about 15-20 % by volume.
- ``Wang2007``: Wang Y et al., Mol Imaging Biol 9:83 (2007), SUV atlas of normal tissues
  (cerebellum SUVmean 8.0 +/- 2.2).
- ``approx.``: no single source; an engineering estimate inside the published range,
  flagged so that it can be replaced by a measured value.

Units: HU; milliseconds; proton density relative to pure water (0..1); SUVbw (g/ml).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from service.errors import OptionError

FloatArray = npt.NDArray[np.float32]

#: Field strengths (T) with tabulated relaxation times.
FIELD_STRENGTHS_T: tuple[float, ...] = (1.5, 3.0)

#: Range of FDG SUV drawn for hot lesions (uniform), from the project brief (3..15).
LESION_SUV_RANGE: tuple[float, float] = (3.0, 15.0)


class Tissue(enum.IntEnum):
    """Tissue label of a voxel (uint8 values in label maps)."""

    AIR = 0  # outside the body
    AIR_CAVITY = 1  # sinuses, mastoid cells, rectal gas
    SOFT_TISSUE = 2  # skin, connective tissue, organ walls
    FAT = 3
    MUSCLE = 4
    CORTICAL_BONE = 5
    CANCELLOUS_BONE = 6  # trabecular bone with marrow
    GREY_MATTER = 7
    WHITE_MATTER = 8
    CSF = 9
    BLADDER = 10  # urine-filled bladder lumen
    PROSTATE = 11

    @classmethod
    def parse(cls, value: Tissue | str | int) -> Tissue:
        """Accept a member, its name (case-insensitive) or its integer label."""
        if isinstance(value, Tissue):
            return value
        if isinstance(value, int):
            try:
                return cls(value)
            except ValueError:
                pass
        else:
            key = str(value).strip().upper().replace("-", "_").replace(" ", "_")
            if key in cls.__members__:
                return cls[key]
        names = ", ".join(t.name.lower() for t in cls)
        raise OptionError(
            f"tissue must be one of {names} (or 0..{len(cls) - 1}), got {value!r}: pass one of these."
        )


#: Number of tissue labels (label values are 0 .. N_TISSUES - 1).
N_TISSUES = len(Tissue)


@dataclass(frozen=True)
class TissueProperties:
    """Physical properties of one tissue.

    Parameters
    ----------
    hu_mean, hu_sd
        CT number (HU) mean and spread (SD) across subjects and within the tissue.
    t1_ms, t2_ms
        ``{b0_tesla: value}`` longitudinal and transverse relaxation times (ms) at 1.5 T and 3 T.
    pd
        Proton (water+fat) density relative to pure water (unitless, 0..1).
    suv_mean, suv_sd
        FDG uptake (SUVbw, g/ml) about 60 min after injection, mean and spread.
    """

    hu_mean: float
    hu_sd: float
    t1_ms: dict[float, float]
    t2_ms: dict[float, float]
    pd: float
    suv_mean: float
    suv_sd: float


# Each number carries its source key (see the module docstring).
# fmt: off
PROPERTIES: dict[Tissue, TissueProperties] = {
    Tissue.AIR: TissueProperties(
        hu_mean=-1000.0, hu_sd=0.0,  # definition of the HU scale (Buzug2008)
        t1_ms={1.5: 1.0, 3.0: 1.0}, t2_ms={1.5: 1.0, 3.0: 1.0}, pd=0.0,  # no protons: no signal
        suv_mean=0.0, suv_sd=0.0,  # no tracer
    ),
    Tissue.AIR_CAVITY: TissueProperties(
        hu_mean=-1000.0, hu_sd=0.0,  # definition (Buzug2008); partial volume raises it at edges
        t1_ms={1.5: 1.0, 3.0: 1.0}, t2_ms={1.5: 1.0, 3.0: 1.0}, pd=0.0,  # no protons
        suv_mean=0.0, suv_sd=0.0,  # no tracer
    ),
    Tissue.SOFT_TISSUE: TissueProperties(
        hu_mean=35.0, hu_sd=15.0,  # soft tissue +25..+60 HU (Buzug2008; Schneider2000 skin ~ +40)
        t1_ms={1.5: 800.0, 3.0: 1000.0},  # approx.: between muscle and fat (dermis/connective tissue)
        t2_ms={1.5: 50.0, 3.0: 45.0},  # approx.
        pd=0.80,  # approx.
        suv_mean=0.8, suv_sd=0.2,  # approx.: mild uptake, skin/organ walls
    ),
    Tissue.FAT: TissueProperties(
        hu_mean=-100.0, hu_sd=20.0,  # -50..-100 (Buzug2008), adipose ~ -100 (Schneider2000)
        t1_ms={1.5: 343.0, 3.0: 382.0},  # subcutaneous fat (deBazelaire2004)
        t2_ms={1.5: 58.0, 3.0: 68.0},  # subcutaneous fat (deBazelaire2004)
        pd=1.0,  # Kwan1999
        suv_mean=0.3, suv_sd=0.1,  # brief (fat ~0.3); Wang2007 reports low fat uptake
    ),
    Tissue.MUSCLE: TissueProperties(
        hu_mean=45.0, hu_sd=10.0,  # skeletal muscle +40..+50 (Schneider2000)
        t1_ms={1.5: 1008.0, 3.0: 1412.0},  # skeletal muscle (Stanisz2005)
        t2_ms={1.5: 44.0, 3.0: 50.0},  # skeletal muscle (Stanisz2005)
        pd=0.80,  # approx. (muscle water content ~75-80 %)
        suv_mean=0.7, suv_sd=0.2,  # brief (muscle ~0.7), consistent with Wang2007
    ),
    Tissue.CORTICAL_BONE: TissueProperties(
        hu_mean=1400.0, hu_sd=250.0,  # bone 700..3000 (Buzug2008); cortical > +1000 (Schneider2000)
        t1_ms={1.5: 250.0, 3.0: 250.0},  # approx. (UTE literature ~140-300 ms); irrelevant: T2 tiny
        t2_ms={1.5: 0.5, 3.0: 0.4},  # T2* 0.4-0.5 ms (Reichert2005): dark at TE >= 2 ms
        pd=0.15,  # bone water 15-20 % (Techawiboonwong2008)
        suv_mean=0.3, suv_sd=0.1,  # approx.: little glucose metabolism in compact bone
    ),
    Tissue.CANCELLOUS_BONE: TissueProperties(
        hu_mean=300.0, hu_sd=100.0,  # cancellous/medullary ~ +300 (Buzug2008 range; Schneider2000)
        t1_ms={1.5: 549.0, 3.0: 586.0},  # L4 vertebral marrow (deBazelaire2004)
        t2_ms={1.5: 49.0, 3.0: 49.0},  # L4 vertebral marrow (deBazelaire2004)
        pd=0.90,  # approx. (fatty marrow, partly replaced by trabeculae)
        suv_mean=1.5, suv_sd=0.4,  # approx.: normal marrow SUVmean 1-2 (Wang2007 range)
    ),
    Tissue.GREY_MATTER: TissueProperties(
        hu_mean=41.0, hu_sd=4.0,  # 37..45 (Buzug2008)
        t1_ms={1.5: 1124.0, 3.0: 1820.0},  # Stanisz2005
        t2_ms={1.5: 95.0, 3.0: 99.0},  # Stanisz2005
        pd=0.86,  # Kwan1999
        suv_mean=8.0, suv_sd=2.0,  # cerebellum 8.0 +/- 2.2 (Wang2007); brief 8-10
    ),
    Tissue.WHITE_MATTER: TissueProperties(
        hu_mean=25.0, hu_sd=4.0,  # 20..30 (Buzug2008)
        t1_ms={1.5: 884.0, 3.0: 1084.0},  # Stanisz2005
        t2_ms={1.5: 72.0, 3.0: 69.0},  # Stanisz2005
        pd=0.77,  # Kwan1999
        suv_mean=3.0, suv_sd=0.8,  # brief (WM ~3): about a third of grey matter
    ),
    Tissue.CSF: TissueProperties(
        hu_mean=8.0, hu_sd=5.0,  # water-like 0..15 (Buzug2008 water 0)
        t1_ms={1.5: 4070.0, 3.0: 4160.0},  # ~4.1-4.2 s (Lu2005 at 3 T; 1.5 T approx. same)
        t2_ms={1.5: 2000.0, 3.0: 1800.0},  # approx. (reported 1.4-2.5 s)
        pd=1.0,  # Kwan1999
        suv_mean=0.4, suv_sd=0.1,  # approx.: photopenic ventricles
    ),
    Tissue.BLADDER: TissueProperties(
        hu_mean=5.0, hu_sd=5.0,  # urine, water-like 0..15 (Buzug2008 water 0)
        t1_ms={1.5: 3000.0, 3.0: 3300.0},  # approx.: free water with solutes
        t2_ms={1.5: 1000.0, 3.0: 900.0},  # approx.
        pd=1.0,  # water
        suv_mean=20.0, suv_sd=10.0,  # approx.: excreted FDG, highly variable (5..50+)
    ),
    Tissue.PROSTATE: TissueProperties(
        hu_mean=40.0, hu_sd=8.0,  # unenhanced soft tissue +25..+60 (Buzug2008)
        t1_ms={1.5: 1317.0, 3.0: 1597.0},  # deBazelaire2004
        t2_ms={1.5: 88.0, 3.0: 74.0},  # deBazelaire2004
        pd=0.90,  # approx.
        suv_mean=2.0, suv_sd=0.5,  # approx.: normal prostate SUVmean ~1.5-2.5
    ),
}
# fmt: on


def check_field_strength(b0_tesla: float) -> float:
    """Return ``b0_tesla`` as a tabulated field strength (1.5 or 3.0 T) or raise OptionError."""
    for b0 in FIELD_STRENGTHS_T:
        if abs(float(b0_tesla) - b0) < 1e-6:
            return b0
    raise OptionError(
        f"b0_tesla must be one of {FIELD_STRENGTHS_T} (tabulated relaxation times), got {b0_tesla!r}: "
        "pass 1.5 or 3.0."
    )


def _table(values: list[float]) -> FloatArray:
    table = np.asarray(values, dtype=np.float32)
    table.setflags(write=False)
    return table


def hu_table() -> tuple[FloatArray, FloatArray]:
    """Per-label CT number mean and SD (HU), arrays of length :data:`N_TISSUES` indexed by label."""
    return (
        _table([PROPERTIES[t].hu_mean for t in Tissue]),
        _table([PROPERTIES[t].hu_sd for t in Tissue]),
    )


def relaxation_table(b0_tesla: float) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Per-label ``(T1 ms, T2 ms, PD)`` at ``b0_tesla`` (1.5 or 3.0), indexed by label."""
    b0 = check_field_strength(b0_tesla)
    return (
        _table([PROPERTIES[t].t1_ms[b0] for t in Tissue]),
        _table([PROPERTIES[t].t2_ms[b0] for t in Tissue]),
        _table([PROPERTIES[t].pd for t in Tissue]),
    )


def suv_table() -> tuple[FloatArray, FloatArray]:
    """Per-label FDG SUVbw mean and SD, indexed by label."""
    return (
        _table([PROPERTIES[t].suv_mean for t in Tissue]),
        _table([PROPERTIES[t].suv_sd for t in Tissue]),
    )


def suv_map(
    labels: npt.NDArray[np.integer],
    rng: np.random.Generator,
    lesions: npt.NDArray[np.integer] | None = None,
    *,
    spread: bool = True,
) -> FloatArray:
    """Ground-truth FDG SUVbw map of a label map (same ``(z, y, x)`` shape).

    Parameters
    ----------
    labels
        :class:`Tissue` label per voxel.
    rng
        Random generator: draws one uptake per tissue (normal, mean/SD of :func:`suv_table`,
        truncated at 10 % of the mean) and one uptake per lesion (uniform in
        :data:`LESION_SUV_RANGE`).
    lesions
        Optional lesion index map (0 = none, 1..n = lesion n) of the same shape.
    spread
        False: every tissue takes its table mean (for tests).

    Returns
    -------
    numpy.ndarray
        float32 SUVbw (g/ml), noise-free.
    """
    mean, sd = suv_table()
    values = mean.astype(np.float64)
    if spread:
        values = np.maximum(values + rng.standard_normal(N_TISSUES) * sd, 0.1 * values)
    suv = values.astype(np.float32)[np.asarray(labels, dtype=np.intp)]
    if lesions is not None:
        lesion_ids = np.asarray(lesions)
        if lesion_ids.shape != suv.shape:
            raise OptionError(
                f"lesions must have the labels' shape {suv.shape}, got {lesion_ids.shape}: "
                "pass the lesion map of the same anatomy."
            )
        for index in range(1, int(lesion_ids.max(initial=0)) + 1):
            suv[lesion_ids == index] = rng.uniform(*LESION_SUV_RANGE)
    return suv
