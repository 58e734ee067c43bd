"""Random digital anatomy: tissue label maps of a head or a pelvis, sub-sampled for partial volume.

Every subject is an *atlas* (a label volume in its own millimetre frame, built with random
sizes and thicknesses, see :mod:`.anatomy_head` and :mod:`.anatomy_pelvis`) seen through a
random rigid-plus-scale transform and a smooth random displacement field. The atlas is
sampled at ``oversample**3`` points inside each output voxel, so the simulators can average
tissue properties over a voxel (partial volume) without building a fine grid.

Grid conventions are those of :class:`service.volume.Volume`: arrays ``(z, y, x)``,
``spacing_mm`` ``(x, y, z)``, LPS millimetres, identity direction.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import ndimage as ndi

from models.simulation.fields import gaussian_basis
from models.simulation.tissues import N_TISSUES, Tissue
from service.errors import OptionError
from service.volume import Modality, Unit, Volume

FloatArray = npt.NDArray[np.float32]
LabelArray = npt.NDArray[np.uint8]


class Site(enum.StrEnum):
    """Anatomical site of a simulated subject."""

    BRAIN = "brain"
    PELVIS = "pelvis"

    @classmethod
    def parse(cls, value: Site | str) -> Site:
        """Accept a member or its name (case-insensitive)."""
        if isinstance(value, Site):
            return value
        try:
            return cls(str(value).strip().lower())
        except ValueError:
            raise OptionError(
                f"site must be 'brain' or 'pelvis', got {value!r}: pass one of these."
            ) from None


@dataclass(frozen=True)
class Grid:
    """An output grid: ``shape_zyx`` voxels of ``spacing_mm`` ``(x, y, z)``, centred on the LPS origin."""

    shape_zyx: tuple[int, int, int]
    spacing_mm: tuple[float, float, float]

    @property
    def origin_mm(self) -> tuple[float, float, float]:
        """LPS centre of voxel ``[0, 0, 0]`` (mm), so that the grid centre is at (0, 0, 0)."""
        nz, ny, nx = self.shape_zyx
        sx, sy, sz = self.spacing_mm
        return (-(nx - 1) / 2 * sx, -(ny - 1) / 2 * sy, -(nz - 1) / 2 * sz)

    def downscaled(self, factor: int) -> Grid:
        """The same field of view with ``factor`` times fewer voxels per axis (previews, tests)."""
        if not 1 <= factor <= 8:
            raise OptionError(f"downscale must be 1..8, got {factor!r}: pass 1 for the full grid.")
        shape = tuple(max(n // factor, 1) for n in self.shape_zyx)
        spacing = tuple(s * factor for s in self.spacing_mm)
        return Grid((shape[0], shape[1], shape[2]), (spacing[0], spacing[1], spacing[2]))

    def axes_mm(self) -> tuple[FloatArray, FloatArray, FloatArray]:
        """LPS coordinates (mm) of voxel centres along z, y and x."""
        ox, oy, oz = self.origin_mm
        sx, sy, sz = self.spacing_mm
        nz, ny, nx = self.shape_zyx
        return (
            (oz + sz * np.arange(nz)).astype(np.float32),
            (oy + sy * np.arange(ny)).astype(np.float32),
            (ox + sx * np.arange(nx)).astype(np.float32),
        )


#: Default grids (documented in docs/simulation.md):
#: head 128 x 128 px of 2 mm x 64 slices of 3 mm (256 x 256 x 192 mm: vertex to below the
#: cerebellum for heads scaled up to 1.1); pelvis 192 (x) by 144 (y) px of 2.5 mm x 48 slices
#: of 3 mm (480 x 360 x 144 mm), wide enough for the hips of a large adult after random scaling.
SITE_GRIDS: dict[Site, Grid] = {
    Site.BRAIN: Grid((64, 128, 128), (2.0, 2.0, 3.0)),
    Site.PELVIS: Grid((48, 144, 192), (2.5, 2.5, 3.0)),
}


#: MNI152 point (LPS mm) at the head grid's centre: brain centre in y, skull vertex inside the top slice.
HEAD_CENTRE_MM: tuple[float, float, float] = (0.0, 17.0, 16.0)


@dataclass(frozen=True)
class Atlas:
    """A label volume in the atlas frame: ``labels[z, y, x]`` at LPS ``origin_mm + spacing_mm * index``."""

    labels: LabelArray
    origin_mm: tuple[float, float, float]  # (x, y, z)
    spacing_mm: tuple[float, float, float]  # (x, y, z)


@dataclass(frozen=True, eq=False)
class Anatomy:
    """One subject's anatomy on its output grid.

    Parameters
    ----------
    site
        Head or pelvis.
    grid
        Output grid (shape, spacing); origin at the grid centre, identity direction.
    samples
        uint8 :class:`Tissue` labels, shape ``(n, z, y, x)``: ``n = oversample**3`` sample points
        spread regularly inside each output voxel.
    lesions
        uint8 lesion index per output voxel ``(z, y, x)`` (0 = none, 1..k); FDG-avid lesions for PET.
    body
        bool body mask ``(z, y, x)``: more than half of the voxel inside the body, internal air included.
    """

    site: Site
    grid: Grid
    samples: LabelArray
    lesions: LabelArray
    body: npt.NDArray[np.bool_]

    @property
    def shape(self) -> tuple[int, int, int]:
        """Output array shape ``(z, y, x)``."""
        return self.grid.shape_zyx

    def average(self, table: npt.ArrayLike) -> FloatArray:
        """Voxel mean of ``table[label]`` over the sub-voxel samples (partial volume), float32 (z, y, x)."""
        lut = np.asarray(table, dtype=np.float32)
        if lut.shape != (N_TISSUES,):
            raise OptionError(
                f"table must hold one value per tissue ({N_TISSUES}), got shape {lut.shape}: "
                "index it by Tissue label."
            )
        return np.asarray(lut[self.samples].mean(axis=0, dtype=np.float32), dtype=np.float32)

    def fractions(self) -> FloatArray:
        """Volume fraction of each tissue per voxel, float32 ``(N_TISSUES, z, y, x)``, summing to 1."""
        n = self.samples.shape[0]
        flat = self.samples.reshape(n, -1).astype(np.int64)
        index = flat + N_TISSUES * np.arange(flat.shape[1], dtype=np.int64)[None, :]
        counts = np.bincount(index.ravel(), minlength=N_TISSUES * flat.shape[1])
        frac: FloatArray = (counts.reshape(flat.shape[1], N_TISSUES).T / n).astype(np.float32)
        return frac.reshape((N_TISSUES, *self.shape))

    def dominant(self) -> LabelArray:
        """Most frequent tissue label per voxel, uint8 ``(z, y, x)``."""
        dominant: LabelArray = self.fractions().argmax(axis=0).astype(np.uint8)
        return dominant

    def pure(self) -> npt.NDArray[np.bool_]:
        """True where every sub-voxel sample has the same label (no partial volume)."""
        return np.asarray(np.all(self.samples == self.samples[:1], axis=0))

    def volume(self, array: npt.ArrayLike, modality: Modality | str, unit: Unit | str) -> Volume:
        """Wrap an array on this grid as a :class:`Volume`."""
        return Volume(
            array=np.asarray(array, dtype=np.float32),
            spacing_mm=self.grid.spacing_mm,
            origin_mm=self.grid.origin_mm,
            modality=Modality.parse(modality),
            unit=Unit.parse(unit),
        )

    def mask_volume(self) -> Volume:
        """The body mask as a CT-typed 0/1 :class:`Volume` (the writer stores it as uint8)."""
        return self.volume(self.body.astype(np.float32), Modality.CT, Unit.HU)


def _rotation(angles_rad: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    ax, ay, az = angles_rad
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return np.asarray(rz @ ry @ rx)


@dataclass(frozen=True)
class Warp:
    """Random map from output LPS points ``p`` to atlas points ``A p + t + d(p)`` (mm)."""

    matrix: npt.NDArray[np.float64]  # A, 3x3 acting on (x, y, z)
    shift_mm: npt.NDArray[np.float64]  # t, (x, y, z)
    displacement_mm: FloatArray  # d on the output grid, (3, z, y, x), components (x, y, z)

    @classmethod
    def random(
        cls,
        rng: np.random.Generator,
        grid: Grid,
        *,
        max_rotation_deg: tuple[float, float, float] = (6.0, 6.0, 10.0),
        scale_range: tuple[float, float] = (0.9, 1.1),
        centre_mm: tuple[float, float, float] = (0.0, 0.0, 0.0),
        max_shift_mm: float = 8.0,
        displacement_sd_mm: float = 3.0,
        control_points: tuple[int, int, int] = (4, 5, 5),
    ) -> Warp:
        """Draw a rotation (about x, y, z), per-axis scale, shift and smooth displacement.

        ``centre_mm`` is the atlas point (x, y, z) that the grid centre sees before the random shift.
        """
        angles = np.deg2rad(rng.uniform(-1, 1, 3) * np.asarray(max_rotation_deg))
        scale = rng.uniform(*scale_range, size=3)
        matrix = np.diag(1.0 / scale) @ _rotation(angles).T
        shift = np.asarray(centre_mm) + rng.uniform(-max_shift_mm, max_shift_mm, 3)
        coarse = rng.standard_normal((3, *control_points))
        bases = [gaussian_basis(n, c) for n, c in zip(grid.shape_zyx, control_points, strict=True)]
        field = np.einsum("dabc,za,yb,xc->dzyx", coarse, *bases, optimize=True)
        field *= displacement_sd_mm / max(float(field.std()), 1e-6)
        return cls(matrix, shift, field.astype(np.float32))

    def sample(self, atlas: Atlas, grid: Grid, oversample: int) -> LabelArray:
        """Atlas labels at ``oversample**3`` points per output voxel, uint8 ``(n, z, y, x)``."""
        if oversample < 1:
            raise OptionError(f"oversample must be >= 1, got {oversample}: pass 1, 2 or 3.")
        z, y, x = grid.axes_mm()
        a = self.matrix.astype(np.float32)
        base = []
        for row in range(3):  # atlas coordinate (x, y, z) of each output voxel centre
            q = (
                a[row, 0] * x[None, None, :]
                + a[row, 1] * y[None, :, None]
                + a[row, 2] * z[:, None, None]
                + np.float32(self.shift_mm[row])
            ) + self.displacement_mm[row]
            base.append((q - np.float32(atlas.origin_mm[row])) / np.float32(atlas.spacing_mm[row]))
        offsets = (np.arange(oversample) + 0.5) / oversample - 0.5
        spacing = np.asarray(grid.spacing_mm)
        out = np.empty((oversample**3, *grid.shape_zyx), dtype=np.uint8)
        n = 0
        for oz in offsets:
            for oy in offsets:
                for ox in offsets:
                    step = self.matrix @ (np.array([ox, oy, oz]) * spacing)
                    coords = [
                        base[2] + np.float32(step[2] / atlas.spacing_mm[2]),
                        base[1] + np.float32(step[1] / atlas.spacing_mm[1]),
                        base[0] + np.float32(step[0] / atlas.spacing_mm[0]),
                    ]
                    out[n] = ndi.map_coordinates(atlas.labels, coords, order=0, mode="nearest")
                    n += 1
        return out


def body_mask(samples: LabelArray) -> npt.NDArray[np.bool_]:
    """Voxels more than half inside the body (any label but outside air), holes filled per slice."""
    inside = (samples != Tissue.AIR).mean(axis=0) > 0.5
    filled = np.stack([ndi.binary_fill_holes(s) for s in inside])
    return np.asarray(filled, dtype=bool)


def add_lesions(
    samples: LabelArray,
    grid: Grid,
    rng: np.random.Generator,
    hosts: tuple[Tissue, ...],
    radius_mm: tuple[float, float],
    count: int,
    *,
    paint: Tissue | None = None,
) -> LabelArray:
    """Place ``count`` spherical lesions centred in voxels whose dominant label is in ``hosts``.

    Returns the uint8 lesion index map ``(z, y, x)``; with ``paint`` the lesion's sub-voxel
    samples are relabelled (e.g. a lymph node drawn as soft tissue inside fat).
    """
    lesions = np.zeros(grid.shape_zyx, dtype=np.uint8)
    first = samples[0]
    candidates = np.flatnonzero(np.isin(first, np.asarray([int(h) for h in hosts])))
    if candidates.size == 0 or count <= 0:
        return lesions
    z, y, x = grid.axes_mm()
    for index in range(1, count + 1):
        centre = np.unravel_index(int(rng.choice(candidates)), grid.shape_zyx)
        c = np.array([z[centre[0]], y[centre[1]], x[centre[2]]])
        radius = rng.uniform(*radius_mm)
        dz = (z[:, None, None] - c[0]) ** 2
        dy = (y[None, :, None] - c[1]) ** 2
        dx = (x[None, None, :] - c[2]) ** 2
        inside = (dz + dy + dx) <= radius**2
        inside &= lesions == 0
        lesions[inside] = index
        if paint is not None:
            samples[:, inside] = np.uint8(paint)
    return lesions


def make_anatomy(
    site: Site | str, rng: np.random.Generator, *, oversample: int = 2, downscale: int = 1
) -> Anatomy:
    """Draw one random subject's anatomy for ``site`` on the default grid of :data:`SITE_GRIDS`.

    Parameters
    ----------
    site
        ``"brain"`` or ``"pelvis"``.
    rng
        The subject's random generator; the anatomy depends on nothing else.
    oversample
        Sub-voxel samples per axis for partial volume (2 -> 8 samples per voxel).
    downscale
        1 for the default grid; N for N times fewer voxels per axis over the same field of view.
    """
    site = Site.parse(site)
    grid = SITE_GRIDS[site].downscaled(downscale)
    if site is Site.BRAIN:
        from models.simulation.anatomy_head import head_atlas, head_lesions

        atlas = head_atlas(rng)
        warp = Warp.random(rng, grid, centre_mm=HEAD_CENTRE_MM, max_shift_mm=5.0)
        samples = warp.sample(atlas, grid, oversample)
        lesions = head_lesions(samples, grid, rng)
    else:
        from models.simulation.anatomy_pelvis import pelvis_atlas, pelvis_lesions

        atlas = pelvis_atlas(rng)
        samples = Warp.random(rng, grid, max_rotation_deg=(4.0, 4.0, 6.0)).sample(atlas, grid, oversample)
        lesions = pelvis_lesions(samples, grid, rng)
    return Anatomy(site=site, grid=grid, samples=samples, lesions=lesions, body=body_mask(samples))
