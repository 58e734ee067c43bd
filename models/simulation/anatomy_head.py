"""Head atlas: brain tissues from nilearn's MNI152 2009a template, skull and scalp built around it.

The nilearn package data (``MNI152_FILE_PATH``, ``GM_MNI152_FILE_PATH``, ``WM_MNI152_FILE_PATH``,
1 mm, RAS) are read with nibabel straight from the installed package: nothing is downloaded.
The T1 template is brain-extracted, so the layers outside the brain are synthesised from the
distance to the (closed) brain surface with random thicknesses: subarachnoid CSF, inner table,
diploe, outer table (cortical / cancellous / cortical bone), temporalis muscle on the sides,
subcutaneous fat and skin. Air cavities (frontal and sphenoid sinuses, mastoid cells) are
random ellipsoids carved out of the non-brain layers. There is no face, orbit or jaw.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage as ndi

from models.simulation.anatomy import Atlas, Grid, LabelArray, add_lesions
from models.simulation.tissues import Tissue
from service.errors import OptionError

#: Margin kept around the brain's bounding box for the skull and scalp (mm).
_MARGIN_MM = 24


def _mni_file(kind: str) -> Path:
    """Path of nilearn's packaged MNI152 2009a file (``kind`` t1, gm or wm), without importing nilearn.

    ``nilearn.datasets`` pulls in scikit-learn (seconds); the files are plain package data.
    """
    spec = importlib.util.find_spec("nilearn")
    if spec is None or not spec.submodule_search_locations:
        raise OptionError(
            "the head anatomy needs nilearn's MNI152 template, but nilearn is not installed: "
            "pip install nilearn (it ships the template; nothing is downloaded)."
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"
    path = path / f"mni_icbm152_{kind}_tal_nlin_sym_09a_converted.nii.gz"
    if not path.is_file():
        raise OptionError(
            f"nilearn's packaged template {str(path)!r} is missing: reinstall nilearn (>= 0.10), "
            "which ships it."
        )
    return path


def _distance_outside(brain: npt.NDArray[np.bool_]) -> npt.NDArray[np.float32]:
    """Distance (mm) from the closed brain surface, computed at 2 mm and interpolated to 1 mm (fast)."""
    nz, ny, nx = brain.shape
    padded = np.pad(brain, [(0, n % 2) for n in brain.shape])
    coarse = padded.reshape(padded.shape[0] // 2, 2, padded.shape[1] // 2, 2, padded.shape[2] // 2, 2)
    coarse = coarse.mean(axis=(1, 3, 5)) >= 0.5
    coarse = ndi.binary_closing(coarse, structure=np.ones((3, 3, 3), dtype=bool), iterations=2) | coarse
    outside = ndi.distance_transform_edt(~coarse, sampling=2.0)
    # Coarse voxel centres sit at fine index 2i + 0.5: shift by half a fine voxel when zooming.
    fine = ndi.zoom(outside.astype(np.float32), 2.0, order=1, mode="nearest", grid_mode=True)
    fine = fine[:nz, :ny, :nx]
    return np.asarray(np.where(brain, 0.0, np.maximum(fine, 0.0)), dtype=np.float32)


@lru_cache(maxsize=1)
def _brain_base() -> tuple[LabelArray, npt.NDArray[np.float32], tuple[float, float, float]]:
    """Brain labels (GM/WM/CSF, else AIR) and distance outside the closed brain (mm), LPS (z, y, x).

    Cached: computed once per process (about 3 s).
    """
    import nibabel as nib

    def load(name: str) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float64]]:
        image: Any = nib.load(str(_mni_file(name)))
        # RAS (i, j, k) -> LPS-ordered (z, y, x): transpose, then flip x and y.
        data = np.asarray(image.dataobj, dtype=np.float32).transpose(2, 1, 0)[:, ::-1, ::-1]
        return np.ascontiguousarray(data), np.asarray(image.affine)

    t1, affine = load("t1")
    gm, _ = load("gm")
    wm, _ = load("wm")
    brain = t1 > 0  # the template is brain-extracted and has no holes
    zz, yy, xx = np.nonzero(brain)
    lo = np.maximum([zz.min() - _MARGIN_MM, yy.min() - _MARGIN_MM, xx.min() - _MARGIN_MM], 0)
    nz, ny, nx = brain.shape
    crop = (slice(lo[0], nz), slice(lo[1], ny), slice(lo[2], nx))
    pad = ((0, _MARGIN_MM), (0, _MARGIN_MM), (0, _MARGIN_MM))
    brain = np.pad(brain[crop], pad)
    gm = np.pad(gm[crop], pad)
    wm = np.pad(wm[crop], pad)
    # Most probable class per brain voxel (probabilities scaled 0..255; CSF = the remainder).
    g, w = gm[brain], wm[brain]
    c = np.clip(255.0 - g - w, 0.0, None)
    tissue = np.where(
        (g >= w) & (g >= c), Tissue.GREY_MATTER, np.where(w >= c, Tissue.WHITE_MATTER, Tissue.CSF)
    )
    labels = np.full(brain.shape, Tissue.AIR, dtype=np.uint8)
    labels[brain] = tissue.astype(np.uint8)
    distance = _distance_outside(brain)
    # LPS position of array index 0: RAS origin plus extent, mirrored in x and y (1 mm voxels).
    size_ras = np.array(t1.shape[::-1], dtype=np.float64)  # (i, j, k) sizes
    ras0 = affine[:3, 3]
    x0 = -(ras0[0] + size_ras[0] - 1) + lo[2]
    y0 = -(ras0[1] + size_ras[1] - 1) + lo[1]
    z0 = ras0[2] + lo[0]
    labels.setflags(write=False)
    distance.setflags(write=False)
    return labels, distance, (float(x0), float(y0), float(z0))


def _carve_ellipsoid(
    labels: LabelArray,
    allowed: npt.NDArray[np.bool_],
    origin: tuple[float, float, float],
    centre: npt.NDArray[np.float64],
    semi_axes: npt.NDArray[np.float64],
) -> None:
    """Set AIR_CAVITY inside an ellipsoid (LPS (x, y, z) mm, 1 mm grid) where ``allowed``."""
    lo = np.floor(centre - semi_axes - np.asarray(origin)).astype(int)
    hi = np.ceil(centre + semi_axes - np.asarray(origin)).astype(int) + 1
    shape_xyz = labels.shape[::-1]
    lo = np.clip(lo, 0, shape_xyz)
    hi = np.clip(hi, 0, shape_xyz)
    box = (slice(lo[2], hi[2]), slice(lo[1], hi[1]), slice(lo[0], hi[0]))
    x = np.arange(lo[0], hi[0]) + origin[0]
    y = np.arange(lo[1], hi[1]) + origin[1]
    z = np.arange(lo[2], hi[2]) + origin[2]
    r = (
        ((x[None, None, :] - centre[0]) / semi_axes[0]) ** 2
        + ((y[None, :, None] - centre[1]) / semi_axes[1]) ** 2
        + ((z[:, None, None] - centre[2]) / semi_axes[2]) ** 2
    )
    inside = (r <= 1.0) & allowed[box]
    labels[box][inside] = Tissue.AIR_CAVITY


def head_atlas(rng: np.random.Generator) -> Atlas:
    """One random head: MNI152 brain plus random-thickness meninges, skull, muscle, fat and skin."""
    brain, distance, origin = _brain_base()
    csf_t = rng.uniform(1.0, 2.5)
    inner_t = rng.uniform(1.2, 2.2)
    diploe_t = rng.uniform(2.0, 4.5)
    outer_t = rng.uniform(1.2, 2.2)
    muscle_t = rng.uniform(3.0, 8.0)
    fat_t = rng.uniform(1.5, 5.0)
    skin_t = rng.uniform(1.5, 2.5)
    edges = np.cumsum([csf_t, inner_t, diploe_t, outer_t])
    labels = brain.copy()
    outside = brain == Tissue.AIR
    layer_labels = (Tissue.CSF, Tissue.CORTICAL_BONE, Tissue.CANCELLOUS_BONE, Tissue.CORTICAL_BONE)
    previous = 0.0
    for edge, tissue in zip(edges, layer_labels, strict=True):
        labels[outside & (distance > previous) & (distance <= edge)] = tissue
        previous = float(edge)
    skull_out = float(edges[-1])
    nz, ny, nx = labels.shape
    z = np.arange(nz) + origin[2]
    y = np.arange(ny) + origin[1]
    x = np.arange(nx) + origin[0]
    # Temporalis over the temporal fossa (MNI, LPS mm): full thickness around y = +15, z = +10,
    # thinning smoothly to nothing 50 mm away in y, 40 mm in z, and medially of |x| = 40 mm.
    profile_z = np.clip(1.0 - ((z - 10.0) / 40.0) ** 2, 0.0, 1.0)[:, None, None]
    profile_y = np.clip(1.0 - ((y - 15.0) / 50.0) ** 2, 0.0, 1.0)[None, :, None]
    profile_x = np.clip((np.abs(x) - 40.0) / 20.0, 0.0, 1.0)[None, None, :]
    muscle_edge = (skull_out + muscle_t * (profile_z * profile_y * profile_x)).astype(np.float32)
    labels[outside & (distance > skull_out) & (distance <= muscle_edge)] = Tissue.MUSCLE
    fat_edge = muscle_edge + fat_t
    labels[outside & (distance > muscle_edge) & (distance <= fat_edge)] = Tissue.FAT
    labels[outside & (distance > fat_edge) & (distance <= fat_edge + skin_t)] = Tissue.SOFT_TISSUE
    # Air cavities, restricted to non-brain tissue beyond the CSF layer (LPS mm; MNI-based positions).
    cavities = [
        (
            np.array([0.0, -70.0 - rng.uniform(0, 6), rng.uniform(0, 15)]),
            rng.uniform([10, 4, 8], [18, 7, 14]),
        ),
        (np.array([0.0, -12.0, -32.0 + rng.uniform(-4, 4)]), rng.uniform([9, 8, 7], [14, 12, 10])),
    ]
    for side in (-1.0, 1.0):
        centre = np.array([side * rng.uniform(50, 58), rng.uniform(22, 34), rng.uniform(-46, -36)])
        cavities.append((centre, rng.uniform([6, 8, 7], [10, 13, 11])))
    carvable = outside & (distance > csf_t) & (distance <= skull_out)
    for centre, semi_axes in cavities:
        _carve_ellipsoid(labels, carvable, origin, centre, semi_axes)
    return Atlas(labels=labels, origin_mm=origin, spacing_mm=(1.0, 1.0, 1.0))


def head_lesions(samples: LabelArray, grid: Grid, rng: np.random.Generator) -> LabelArray:
    """0-2 FDG-avid brain lesions (5-12 mm radius) centred in grey or white matter; not drawn in CT/MR."""
    count = int(rng.integers(0, 3))
    return add_lesions(samples, grid, rng, (Tissue.GREY_MATTER, Tissue.WHITE_MATTER), (5.0, 12.0), count)
