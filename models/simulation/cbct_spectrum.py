"""X-ray attenuation data and the polychromatic beam model of the CBCT simulator.

Mass attenuation coefficients (cm^2/g, total with coherent scattering) are NIST XCOM /
Hubbell & Seltzer (NISTIR 5632) values for liquid water, ICRU-44 cortical bone
(density 1.92 g/cm^3) and aluminium, interpolated log-log in energy.

The spectrum is Kramers' unfiltered bremsstrahlung law (photon fluence proportional to
``(kVp - E) / E``) hardened by an aluminium-equivalent filter, and weighted by ``E`` for
an energy-integrating flat-panel detector. It ignores characteristic lines, which do not
change the beam-hardening behaviour materially at 100-140 kVp with >2 mm Al.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

_E_KEV = np.array([10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 80.0, 100.0, 150.0])
_MU_RHO_WATER = np.array([5.329, 1.673, 0.8096, 0.3756, 0.2683, 0.2269, 0.2059, 0.1837, 0.1707, 0.1505])
_MU_RHO_BONE = np.array([28.51, 9.032, 4.001, 1.331, 0.6655, 0.4242, 0.3148, 0.2229, 0.1855, 0.1480])
_MU_RHO_AL = np.array([26.21, 7.955, 3.441, 1.128, 0.5685, 0.3681, 0.2778, 0.2018, 0.1704, 0.1378])

RHO_BONE_G_CM3 = 1.92
RHO_AL_G_CM3 = 2.699
#: Effective energy (keV) at which the planning CT's HU are taken to be defined (120 kVp CT).
E_REF_KEV = 70.0
#: Highest HU treated as pure (water-like) soft tissue; above it a bone fraction is added.
HU_SOFT_MAX = 100.0
#: Width (keV) of the spectrum's energy bins.
BIN_KEV = 10.0


def mass_attenuation(material: str, energy_kev: F64 | float) -> F64:
    """Mass attenuation coefficient (cm^2/g) of ``"water"``, ``"bone"`` or ``"al"`` at ``energy_kev``."""
    table = {"water": _MU_RHO_WATER, "bone": _MU_RHO_BONE, "al": _MU_RHO_AL}[material]
    e = np.asarray(energy_kev, dtype=np.float64)
    return np.asarray(np.exp(np.interp(np.log(e), np.log(_E_KEV), np.log(table))), dtype=np.float64)


def mu_water_per_mm(energy_kev: float = E_REF_KEV) -> float:
    """Linear attenuation of water (1/mm) at ``energy_kev``."""
    return float(mass_attenuation("water", energy_kev)) / 10.0


def hu_bone(energy_kev: float = E_REF_KEV) -> float:
    """HU of ICRU-44 cortical bone at ``energy_kev`` (about 1600 HU at 70 keV)."""
    ratio = RHO_BONE_G_CM3 * mass_attenuation("bone", energy_kev) / mass_attenuation("water", energy_kev)
    return float(1000.0 * (ratio - 1.0))


def decompose_hu(hu: F32) -> tuple[F32, F32]:
    """Split HU into water-equivalent and cortical-bone densities (g/cm^3).

    Up to ``HU_SOFT_MAX`` a voxel is water of density ``1 + HU / 1000`` (air to soft
    tissue); above it, a volume fraction ``f`` of cortical bone replaces tissue of
    ``HU_SOFT_MAX``, with ``f`` linear in HU so that the attenuation at ``E_REF_KEV``
    reproduces the input HU exactly (above cortical bone, pure bone of scaled density).
    """
    hu = np.asarray(hu, dtype=np.float32)
    hb = hu_bone()
    rho_soft_max = 1.0 + HU_SOFT_MAX / 1000.0
    f = np.clip((hu - HU_SOFT_MAX) / (hb - HU_SOFT_MAX), 0.0, None)
    water = np.where(
        hu <= HU_SOFT_MAX, np.clip(1.0 + hu / 1000.0, 0.0, None), rho_soft_max * np.clip(1 - f, 0, 1)
    )
    # denser than cortical bone: scale the bone density so that mu(E_REF) still matches the HU
    bone = np.where(f <= 1.0, f, (1.0 + hu / 1000.0) / (1.0 + hb / 1000.0)) * RHO_BONE_G_CM3
    return water.astype(np.float32), bone.astype(np.float32)


def spectrum(kvp: float, filter_mm_al: float) -> tuple[F64, F64]:
    """Detected-energy-weighted spectrum: bin centres (keV) and weights summing to one."""
    e = np.arange(15.0 + BIN_KEV / 2.0, kvp, BIN_KEV)
    fluence = (kvp - e) / e * np.exp(-mass_attenuation("al", e) * RHO_AL_G_CM3 * filter_mm_al / 10.0)
    w = fluence * e
    return e, w / w.sum()


def polychromatic_transmission(water_g_cm2: F32, bone_g_cm2: F32, energies_kev: F64, weights: F64) -> F32:
    """Detected primary transmission ``sum_E w(E) exp(-mu_w(E) L_w - mu_b(E) L_b)``.

    ``water_g_cm2``, ``bone_g_cm2``: line integrals of the two basis densities (g/cm^2).
    """
    out = np.zeros(water_g_cm2.shape, dtype=np.float32)
    mw = mass_attenuation("water", energies_kev)
    mb = mass_attenuation("bone", energies_kev)
    for w, a, b in zip(weights, mw, mb, strict=True):
        out += np.float32(w) * np.exp(-(np.float32(a) * water_g_cm2 + np.float32(b) * bone_g_cm2))
    return out


def water_calibration_mu_per_mm(energies_kev: F64, weights: F64, water_mm: float) -> float:
    """Effective water attenuation (1/mm) a scanner's water calibration would find.

    It is ``-ln(T) / L`` for a water path ``L = water_mm``: the value that makes the
    reconstructed water of a phantom about that size read 0 HU.
    """
    t = polychromatic_transmission(
        np.array([water_mm / 10.0], dtype=np.float32), np.zeros(1, dtype=np.float32), energies_kev, weights
    )
    return float(-np.log(t[0]) / water_mm)
