"""Self-contained HTML reports of a gamma comparison or an image comparison.

Figures are PNG inlined as base64, so the file can be archived or mailed alone. matplotlib
(Agg backend) is imported only here, only when a report is written. Each report states its
inputs' SHA-256 digests (see :func:`input_digest`) and the options used.

Slices and profiles pass through an "isocentre": for dose, the voxel of the reference
maximum (the first one in array order if several); for images, the centre voxel of the
reference grid. The report says which.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from service.atomic import atomic_file
from service.validation.gamma import GammaResult, volume_axes
from service.validation.gamma_kernel import interpolate_numpy
from service.validation.metrics import ImageMetrics
from service.volume import Volume

__all__ = ["input_digest", "write_gamma_report", "write_image_report"]

_STYLE = (
    "body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse}"
    "td,th{border:1px solid #999;padding:3px 8px;text-align:right}th{background:#eee}"
    "img{max-width:100%}code{font-size:90%}"
)


def input_digest(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file, or of a folder's files (relative names and bytes, in sorted order)."""
    root = Path(path)
    digest = hashlib.sha256()
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    for file in files:
        if root.is_dir():
            digest.update(str(file.relative_to(root)).encode() + b"\0")
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    _pyplot().close(fig)
    return '<img src="data:image/png;base64,' + base64.b64encode(buffer.getvalue()).decode() + '">'


def _table(rows: Sequence[Mapping[str, Any]]) -> str:
    if not rows:
        return "<p>(none)</p>"
    head = "".join(f"<th>{html.escape(str(k))}</th>" for k in rows[0])
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row.values()) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


def _slices(volume: npt.NDArray[Any], centre: tuple[int, int, int]) -> list[tuple[str, npt.NDArray[Any]]]:
    k, j, i = centre
    return [("axial (z)", volume[k]), ("coronal (y)", volume[:, j, :]), ("sagittal (x)", volume[:, :, i])]


def plane_aspects(spacing_xyz: tuple[float, ...]) -> tuple[float, float, float]:
    """Pixel aspect (row spacing / column spacing) of the axial, coronal and sagittal planes.

    ``spacing_xyz`` is the voxel spacing in mm along x, y, z; axial planes have y rows and x
    columns, coronal z rows and x columns, sagittal z rows and y columns.
    """
    sx, sy, sz = (float(v) for v in spacing_xyz)
    return sy / sx, sz / sx, sz / sy


def _slice_figure(
    volume: npt.NDArray[Any],
    centre: tuple[int, int, int],
    spacing_xyz: tuple[float, ...],
    title: str,
    **imshow: Any,
) -> str:
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.8))
    image = None
    planes = _slices(volume, centre)
    for ax, (name, plane), aspect in zip(axes, planes, plane_aspects(spacing_xyz), strict=True):
        # Axial: row 0 at the top, as DICOM displays it; coronal and sagittal: slice 0 at the bottom.
        # Drawn to physical proportions (a 3 mm slice is three times as tall as a 1 mm pixel is wide).
        image = ax.imshow(
            plane, origin="upper" if name.startswith("axial") else "lower", aspect=aspect, **imshow
        )
        ax.set_title(f"{title}: {name}")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(image, ax=list(axes), shrink=0.8)
    return _png(fig)


Lines = tuple[npt.NDArray[Any], npt.NDArray[Any], npt.NDArray[Any]]


def _lines(volume: npt.NDArray[Any], centre: tuple[int, int, int]) -> Lines:
    """Profiles along x, y and z through ``centre`` (z, y, x)."""
    k, j, i = centre
    return volume[k, j, :], volume[k, :, i], volume[:, j, i]


def _profiles(curves: Mapping[str, Lines], spacing_xyz: tuple[float, ...], unit: str) -> str:
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
    for axis, (ax, label) in enumerate(zip(axes, "xyz", strict=True)):
        for name, lines in curves.items():
            position = np.arange(lines[axis].size) * spacing_xyz[axis]
            ax.plot(position, lines[axis], label=name)
        ax.set_xlabel(f"{label} index axis (mm from the first voxel)")
        ax.set_ylabel(unit)
        ax.legend(fontsize=8)
    return _png(fig)


def _evaluated_lines(reference: Volume, evaluated: Volume, centre: tuple[int, int, int]) -> Lines:
    """The evaluated dose along the reference's profiles (trilinear; NaN outside its grid)."""
    if evaluated.same_grid(reference):
        return _lines(evaluated.array, centre)
    ev_axes = volume_axes(evaluated, reference)
    first = np.array([a[0] for a in ev_axes])
    last = np.array([a[-1] for a in ev_axes])
    spacing = np.array([a[1] - a[0] if a.size > 1 else 1.0 for a in ev_axes])
    ref_axes = volume_axes(reference, reference)
    k, j, i = centre
    point = np.array([ref_axes[0][k], ref_axes[1][j], ref_axes[2][i]])
    out = []
    for axis in (2, 1, 0):
        points = np.repeat(point[None, :], ref_axes[axis].size, axis=0)
        points[:, axis] = ref_axes[axis]
        values = interpolate_numpy(evaluated.array.astype(np.float64), first, spacing, last, points)
        out.append(np.where(np.isfinite(values), values, np.nan))
    return out[0], out[1], out[2]


def _page(title: str, sections: list[str]) -> str:
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
        + "".join(sections)
        + "</body></html>"
    )


def _inputs_section(inputs: Mapping[str, str]) -> str:
    rows = [{"input": name, "SHA-256": digest} for name, digest in inputs.items()]
    return "<h2>Inputs</h2>" + _table(rows)


def _write(path: str | os.PathLike[str], text: str, overwrite: bool) -> Path:
    with atomic_file(path, overwrite=overwrite) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_gamma_report(
    path: str | os.PathLike[str],
    reference: Volume,
    evaluated: Volume,
    result: GammaResult,
    *,
    inputs: Mapping[str, str],
    overwrite: bool = False,
) -> Path:
    """Write the HTML report of :func:`~service.validation.gamma.gamma_volumes` (atomically).

    ``inputs`` maps an input's role (e.g. ``"reference"``) to its digest.
    """
    ref = reference.array
    k, j, i = (int(v) for v in np.unravel_index(int(np.argmax(ref)), ref.shape))
    centre = (k, j, i)
    sections = [
        _inputs_section(inputs),
        "<h2>Options</h2>" + _table([{k: _fmt(v) for k, v in result.options.to_dict().items()}]),
        f"<p>Normalisation dose {result.normalisation_dose:.4g} Gy; cutoff dose {result.cutoff_dose:.4g} Gy; "
        f"kernel {html.escape(result.kernel)}. A point passes when gamma &le; 1. Isocentre for slices and "
        f"profiles: the reference dose maximum, voxel (z, y, x) = {centre}.</p>",
        "<h2>Results</h2>" + _table([r.to_dict() for r in result.results]),
        "<h2>Dose</h2>",
        _slice_figure(ref, centre, reference.spacing_mm, "reference dose (Gy)", cmap="jet"),
        _profiles(
            {"reference": _lines(ref, centre), "evaluated": _evaluated_lines(reference, evaluated, centre)},
            reference.spacing_mm,
            "dose (Gy)",
        ),
    ]
    plt = _pyplot()
    for res in result.results:
        shown = np.where(np.isinf(res.gamma_map), result.options.max_gamma, res.gamma_map)
        sections.append(f"<h2>Gamma {html.escape(str(res.criterion))}</h2>")
        sections.append(
            _slice_figure(
                shown, centre, reference.spacing_mm, f"gamma {res.criterion}", cmap="RdYlGn_r", vmin=0, vmax=2
            )
        )
        fig, ax = plt.subplots(figsize=(6, 3))
        values = shown[np.isfinite(shown)]
        ax.hist(values, bins=np.linspace(0, result.options.max_gamma, 41))
        ax.axvline(1.0, color="k", linestyle="--")
        ax.set_xlabel("gamma")
        ax.set_ylabel("points")
        sections.append(_png(fig))
    return _write(path, _page("Gamma index report", sections), overwrite)


def write_image_report(
    path: str | os.PathLike[str],
    reference: Volume,
    candidate: Volume,
    metrics: ImageMetrics,
    *,
    mask: npt.NDArray[np.bool_] | None = None,
    inputs: Mapping[str, str],
    overwrite: bool = False,
) -> Path:
    """Write the HTML report of :func:`~service.validation.metrics.image_metrics` (atomically)."""
    centre = (reference.shape[0] // 2, reference.shape[1] // 2, reference.shape[2] // 2)
    difference = candidate.array - reference.array
    summary = {k: v for k, v in metrics.to_dict().items() if not isinstance(v, dict)}
    bands = [
        {"band": name, "MAE (HU)": metrics.mae_band_hu[name], "voxels": metrics.voxels_band[name]}
        for name in metrics.mae_band_hu
    ]
    sections = [
        _inputs_section(inputs),
        "<h2>Metrics (HU; PSNR in dB)</h2>" + _table([summary]),
        "<h2>MAE per HU band of the reference</h2>" + _table(bands),
        f"<p>Slices and profiles pass through the image centre, voxel (z, y, x) = {centre}.</p>",
        _slice_figure(
            reference.array,
            centre,
            reference.spacing_mm,
            "reference (HU)",
            cmap="gray",
            vmin=-1000,
            vmax=1500,
        ),
        _slice_figure(
            difference,
            centre,
            reference.spacing_mm,
            "candidate - reference (HU)",
            cmap="bwr",
            vmin=-300,
            vmax=300,
        ),
        _profiles(
            {"reference": _lines(reference.array, centre), "candidate": _lines(candidate.array, centre)},
            reference.spacing_mm,
            "HU",
        ),
    ]
    if mask is not None:
        sections.append(
            _slice_figure(
                mask.astype(np.float32),
                centre,
                reference.spacing_mm,
                "body mask",
                cmap="gray",
                vmin=0,
                vmax=1,
            )
        )
    return _write(path, _page("Image comparison report", sections), overwrite)
