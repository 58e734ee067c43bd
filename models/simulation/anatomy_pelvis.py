"""Male pelvis atlas built from random geometric primitives (LPS mm: +x left, +y posterior, +z up).

Body: elliptic outline with skin, subcutaneous fat and a muscle compartment; pelvic cavity of
fat holding the bladder (wall + urine), prostate, rectum (wall, faeces, gas) and, in the upper
slices, bowel loops. Bones are one signed-distance union (femoral heads, necks, trochanters
and shafts, acetabula, ilia, pubic and ischial rami, sacrum, coccyx, L5) turned into a cortical
shell of random thickness around cancellous bone. The femoral-head level is z = 0.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from models.simulation.anatomy import Atlas, Grid, LabelArray, _rotation, add_lesions
from models.simulation.tissues import Tissue

Vec = npt.NDArray[np.float64]
Sdf = Callable[[Vec, Vec, Vec], npt.NDArray[np.float32]]

#: Atlas grid: 1.25 mm in-plane, 1.5 mm slices over x +/-200, y +/-150, z -85..+95 mm.
_SPACING = (1.25, 1.25, 1.5)
_ORIGIN = (-200.0, -150.0, -85.0)
_SHAPE = (121, 241, 321)  # (z, y, x)


class _Canvas:
    """The atlas under construction: labels plus a signed distance (mm) to the bone surface."""

    def __init__(self) -> None:
        self.labels = np.full(_SHAPE, Tissue.AIR, dtype=np.uint8)
        self.bone = np.full(_SHAPE, np.inf, dtype=np.float32)
        self.axes = [
            _ORIGIN[2] + _SPACING[2] * np.arange(_SHAPE[0]),
            _ORIGIN[1] + _SPACING[1] * np.arange(_SHAPE[1]),
            _ORIGIN[0] + _SPACING[0] * np.arange(_SHAPE[2]),
        ]

    def box(self, lo: Vec, hi: Vec) -> tuple[tuple[slice, slice, slice], Any, Any, Any]:
        """Index box covering LPS ``lo..hi`` (x, y, z) and its broadcast coordinates."""
        slices = []
        for axis, (a, b) in enumerate(zip(lo[::-1], hi[::-1], strict=True)):
            spacing = _SPACING[2 - axis]
            origin = _ORIGIN[2 - axis]
            i0 = int(np.clip(np.floor((a - origin) / spacing), 0, _SHAPE[axis]))
            i1 = int(np.clip(np.ceil((b - origin) / spacing) + 1, 0, _SHAPE[axis]))
            slices.append(slice(i0, i1))
        z = self.axes[0][slices[0]][:, None, None]
        y = self.axes[1][slices[1]][None, :, None]
        x = self.axes[2][slices[2]][None, None, :]
        return (slices[0], slices[1], slices[2]), x, y, z

    def add_bone(self, sdf: Sdf, lo: Vec, hi: Vec) -> None:
        """Union a bone piece (signed distance, negative inside) into the bone field."""
        box, x, y, z = self.box(lo, hi)
        np.minimum(self.bone[box], sdf(x, y, z), out=self.bone[box])

    def paint(self, sdf: Sdf, lo: Vec, hi: Vec, tissue: Tissue, where: Tissue | None = None) -> None:
        """Label voxels with negative ``sdf`` (optionally only those currently labelled ``where``)."""
        box, x, y, z = self.box(lo, hi)
        inside = sdf(x, y, z) <= 0
        if where is not None:
            inside &= self.labels[box] == where
        self.labels[box][inside] = tissue


def _sphere(c: Vec, r: float) -> Sdf:
    def sdf(x: Vec, y: Vec, z: Vec) -> npt.NDArray[np.float32]:
        return np.asarray(np.sqrt((x - c[0]) ** 2 + (y - c[1]) ** 2 + (z - c[2]) ** 2) - r, dtype=np.float32)

    return sdf


def _capsule(a: Vec, b: Vec, r: float) -> Sdf:
    ab = b - a
    length2 = float(ab @ ab)

    def sdf(x: Vec, y: Vec, z: Vec) -> npt.NDArray[np.float32]:
        px, py, pz = x - a[0], y - a[1], z - a[2]
        t = np.clip((px * ab[0] + py * ab[1] + pz * ab[2]) / length2, 0.0, 1.0)
        d = np.sqrt((px - t * ab[0]) ** 2 + (py - t * ab[1]) ** 2 + (pz - t * ab[2]) ** 2)
        return np.asarray(d - r, dtype=np.float32)

    return sdf


def _ellipsoid(c: Vec, axes: Vec, rotation: Vec | None = None) -> Sdf:
    """Approximate signed distance of a (rotated) ellipsoid: (normalised radius - 1) x smallest axis."""
    inv = np.eye(3) if rotation is None else rotation.T

    def sdf(x: Vec, y: Vec, z: Vec) -> npt.NDArray[np.float32]:
        px, py, pz = x - c[0], y - c[1], z - c[2]
        r2 = 0.0
        for row in range(3):
            u = inv[row, 0] * px + inv[row, 1] * py + inv[row, 2] * pz
            r2 = r2 + (u / axes[row]) ** 2
        return np.asarray((np.sqrt(r2) - 1.0) * float(axes.min()), dtype=np.float32)

    return sdf


def _bbox(c: Vec, r: float) -> tuple[Vec, Vec]:
    return c - r, c + r


def _cap_box(a: Vec, b: Vec, r: float) -> tuple[Vec, Vec]:
    return np.minimum(a, b) - r, np.maximum(a, b) + r


def _femur_and_hip(canvas: _Canvas, rng: np.random.Generator, side: float, fy: float, sym: Vec) -> None:
    """One femur (head, neck, trochanter, shaft) and hip bone (acetabulum, ilium, rami, ischium)."""
    u = rng.uniform
    head = np.array([side * u(85, 100), fy, 0.0])
    radius = u(22, 26)
    canvas.add_bone(_sphere(head, radius), *_bbox(head, radius))
    troch = head + np.array([side * u(30, 38), u(0, 8), -u(28, 36)])
    canvas.add_bone(_capsule(head, troch, u(14, 17)), *_cap_box(head, troch, 18))
    great = troch + np.array([side * 8, 5, 5])
    canvas.add_bone(_sphere(great, u(17, 21)), *_bbox(great, 22))
    foot = troch + np.array([-side * u(5, 12), u(0, 6), -110.0])
    canvas.add_bone(_capsule(troch, foot, u(13, 16)), *_cap_box(troch, foot, 17))
    # Acetabulum: spherical shell around the head, medial-superior half only.
    inner, outer = radius + u(2.0, 3.0), radius + u(11, 15)
    normal = np.array([-side, 0.2, 1.0]) / np.linalg.norm([-side, 0.2, 1.0])

    def cup(x: Vec, y: Vec, z: Vec) -> npt.NDArray[np.float32]:
        px, py, pz = x - head[0], y - head[1], z - head[2]
        d = np.sqrt(px**2 + py**2 + pz**2)
        half = -(px * normal[0] + py * normal[1] + pz * normal[2]) - 4.0
        return np.asarray(np.maximum(np.maximum(inner - d, d - outer), half), dtype=np.float32)

    canvas.add_bone(cup, *_bbox(head, outer))
    ilium = np.array([side * u(85, 100), u(20, 35), u(52, 64)])
    rot = _rotation(np.deg2rad([0.0, -side * u(15, 25), side * u(20, 35)]))
    axes = np.array([u(9, 13), u(50, 60), u(36, 44)])
    canvas.add_bone(_ellipsoid(ilium, axes, rot), *_bbox(ilium, 62))
    body = head + np.array([-side * 8, 8, 14])
    canvas.add_bone(_capsule(body, ilium - np.array([0, 0, 20]), u(17, 21)), *_cap_box(body, ilium, 24))
    si_joint = np.array([side * u(38, 45), u(55, 65), u(35, 45)])
    back = ilium + np.array([-side * 25, 30, -5])
    canvas.add_bone(_capsule(back, si_joint, u(12, 16)), *_cap_box(back, si_joint, 17))
    sym_side = sym + np.array([side * 8, 0, 0])
    pubis = head + np.array([-side * 20, -12, 2])
    canvas.add_bone(_capsule(pubis, sym_side, u(9, 12)), *_cap_box(pubis, sym_side, 13))
    tuber = np.array([side * u(50, 60), fy + u(10, 25), -u(45, 55)])
    ischium = head + np.array([-side * 10, 10, -12])
    canvas.add_bone(_capsule(ischium, tuber, u(12, 15)), *_cap_box(ischium, tuber, 16))
    canvas.add_bone(_sphere(tuber, u(13, 16)), *_bbox(tuber, 17))
    low_sym = sym_side + np.array([0, 0, -10])
    canvas.add_bone(_capsule(low_sym, tuber, u(7, 10)), *_cap_box(low_sym, tuber, 11))


def _body(canvas: _Canvas, rng: np.random.Generator, cavity_y: float) -> None:
    """Skin, subcutaneous fat, muscle compartment and the fat of the pelvic cavity, slice by slice."""
    u = rng.uniform
    a0, b0, y0 = u(145, 180), u(100, 128), u(-5, 10)
    # Front (abdomen, y < y0) and back (buttocks) differ in depth: per-row AP semi-axis factor.
    depth = np.where(canvas.axes[1][:, None] < y0, u(0.85, 1.05), u(0.95, 1.15))
    taper = u(-0.05, 0.08)
    skin, fat_lat, fat_ap = u(1.5, 2.5), u(10, 40), u(10, 35)
    floor = u(-48, -38)
    cavity_a, cavity_b = u(48, 58), u(42, 52)
    y = canvas.axes[1][:, None]
    x = canvas.axes[2][None, :]
    for k, z in enumerate(canvas.axes[0]):
        a, b = a0 * (1 + taper * z / 80.0), b0 * (1 + 0.5 * taper * z / 80.0)
        layers = (
            (a, b, Tissue.SOFT_TISSUE),
            (a - skin, b - skin, Tissue.FAT),
            (a - skin - fat_lat, b - skin - fat_ap, Tissue.MUSCLE),
        )
        row = canvas.labels[k]
        for sa, sb, tissue in layers:
            row[(x / sa) ** 2 + ((y - y0) / (sb * depth)) ** 2 <= 1.0] = tissue
        if z > floor:
            grow = 1.0 + max(z - 20.0, 0.0) / 80.0  # the false pelvis widens above the inlet
            ca, cb = cavity_a * grow, cavity_b * min(grow, 1.3)
            row[((x / ca) ** 2 + ((y - cavity_y) / cb) ** 2 <= 1.0) & (row == Tissue.MUSCLE)] = Tissue.FAT


def _organs(canvas: _Canvas, rng: np.random.Generator, sym: Vec) -> None:
    """Bladder, prostate, rectum and bowel loops inside the cavity fat."""
    u = rng.uniform
    bladder_c = np.array([u(-5, 5), sym[1] + u(32, 42), u(5, 25)])
    bladder_ax = np.array([u(25, 45), u(20, 35), u(18, 35)])
    wall = u(2.5, 4.0)
    box = _bbox(bladder_c, float(bladder_ax.max()) + 1)
    canvas.paint(_ellipsoid(bladder_c, bladder_ax), *box, Tissue.SOFT_TISSUE)
    canvas.paint(_ellipsoid(bladder_c, bladder_ax - wall), *box, Tissue.BLADDER)
    prostate_ax = np.array([u(18, 24), u(13, 18), u(15, 20)])
    prostate_z = bladder_c[2] - bladder_ax[2] - prostate_ax[2] * u(0.5, 0.8)
    prostate_c = np.array([0.0, sym[1] + u(30, 36), prostate_z])
    canvas.paint(_ellipsoid(prostate_c, prostate_ax), *_bbox(prostate_c, 25), Tissue.PROSTATE)
    # Rectum: tube climbing posteriorly; gas on the anterior (upper, supine) side of the lumen.
    radius, rwall = u(12, 19), u(2.5, 4.0)
    y_low = prostate_c[1] + prostate_ax[1] + radius + u(2, 6)
    slope, gas = u(0.5, 0.9), u(0.0, 0.6)
    gas_lo, gas_hi = sorted(u(-40, 50, 2))
    y = canvas.axes[1][:, None]
    x = canvas.axes[2][None, :]
    for k, z in enumerate(canvas.axes[0]):
        if not -70.0 < z < 55.0:
            continue
        yc = y_low + slope * max(z - prostate_c[2], 0.0)
        r2 = x**2 + (y - yc) ** 2
        row = canvas.labels[k]
        row[r2 <= radius**2] = Tissue.SOFT_TISSUE
        if gas > 0 and gas_lo < z < gas_hi:
            lumen = radius - rwall
            row[(r2 <= lumen**2) & (y - yc < -lumen * (1 - 2 * gas))] = Tissue.AIR_CAVITY
    for _ in range(int(rng.integers(3, 7))):  # bowel loops above the bladder dome
        c = np.array([u(-60, 60), u(-40, 30), u(45, 85)])
        r = u(12, 22)
        canvas.paint(_sphere(c, r), *_bbox(c, r), Tissue.SOFT_TISSUE, where=Tissue.FAT)
        if rng.random() < 0.5:
            g = c + np.array([0, -r / 2, 0])
            canvas.paint(_sphere(g, r / 2.5), *_bbox(g, r / 2), Tissue.AIR_CAVITY, where=Tissue.SOFT_TISSUE)


def _spine(canvas: _Canvas, rng: np.random.Generator) -> None:
    """Sacrum (tilted plate), coccyx, and the L5 body with its canal at the top."""
    u = rng.uniform
    sacrum = np.array([0.0, u(70, 85), u(35, 50)])
    rot = _rotation(np.deg2rad([u(25, 40), 0.0, 0.0]))
    axes = np.array([u(45, 52), u(14, 18), u(45, 55)])
    canvas.add_bone(_ellipsoid(sacrum, axes, rot), *_bbox(sacrum, 60))
    tip = sacrum + np.array([0.0, 12.0, -axes[2] + 5])
    end = tip + np.array([0.0, -12.0, -25.0])
    canvas.add_bone(_capsule(tip, end, u(6, 8)), *_cap_box(tip, end, 9))
    l5_low = sacrum + np.array([0.0, -22.0, axes[2] - 5])
    l5_top = l5_low + np.array([0.0, -4.0, 40.0])
    canvas.add_bone(_capsule(l5_low, l5_top, u(20, 24)), *_cap_box(l5_low, l5_top, 25))
    canal_low, canal_top = l5_low + np.array([0, 32, 0]), l5_top + np.array([0, 32, 10])
    canvas.add_bone(_capsule(canal_low, canal_top, 14.0), *_cap_box(canal_low, canal_top, 15))
    canvas.paint(_capsule(canal_low, canal_top, u(7, 9)), *_cap_box(canal_low, canal_top, 10), Tissue.CSF)


def pelvis_atlas(rng: np.random.Generator) -> Atlas:
    """One random male pelvis (1.25 x 1.25 x 1.5 mm atlas)."""
    canvas = _Canvas()
    fy = rng.uniform(-5, 10)
    sym = np.array([0.0, fy - rng.uniform(55, 70), -12.0])
    _body(canvas, rng, cavity_y=fy + 15.0)
    _organs(canvas, rng, sym)
    for side in (-1.0, 1.0):
        _femur_and_hip(canvas, rng, side, fy, sym)
    _spine(canvas, rng)
    cortex = rng.uniform(1.5, 3.0)
    inside_body = canvas.labels != Tissue.AIR
    keep_csf = canvas.labels == Tissue.CSF
    canvas.labels[(canvas.bone <= 0) & inside_body & ~keep_csf] = Tissue.CORTICAL_BONE
    canvas.labels[(canvas.bone <= -cortex) & inside_body & ~keep_csf] = Tissue.CANCELLOUS_BONE
    return Atlas(labels=canvas.labels, origin_mm=_ORIGIN, spacing_mm=_SPACING)


def pelvis_lesions(samples: LabelArray, grid: Grid, rng: np.random.Generator) -> LabelArray:
    """0-2 FDG-avid lesions: in the prostate (4-9 mm, invisible on CT/MR) or a lymph node in fat.

    Lymph nodes are painted as soft tissue, so they show on CT and MR.
    """
    lesions = np.zeros(grid.shape_zyx, dtype=np.uint8)
    for _ in range(int(rng.integers(0, 3))):
        if rng.random() < 0.5:
            new = add_lesions(samples, grid, rng, (Tissue.PROSTATE,), (4.0, 9.0), 1)
        else:
            new = add_lesions(samples, grid, rng, (Tissue.FAT,), (4.0, 9.0), 1, paint=Tissue.SOFT_TISSUE)
        lesions[(new > 0) & (lesions == 0)] = lesions.max() + 1
    return lesions
