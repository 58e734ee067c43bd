"""PNG panels of simulated subjects for the documentation (matplotlib, Agg backend).

Run ``python -m models.simulation.figures [OUT_DIR]`` (default ``docs/figures``). For each
site it writes ``simulation_<site>_axial.png`` (rows: subjects; columns: tissue labels, CT,
T1-w MR, T2-w MR, CBCT, full-dose PET, PET at 1/20 dose, all through one anatomy) and
``simulation_<site>_planes.png`` (coronal and sagittal CT and MR of the first subject).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from models.simulation.anatomy import Anatomy, Site, make_anatomy
from models.simulation.ct import CTParams, simulate_ct
from models.simulation.dataset import subject_rng, suv_truth
from models.simulation.mr import MRParams, simulate_mr
from models.simulation.tissues import N_TISSUES
from service.atomic import atomic_file

Image = npt.NDArray[np.float32]

#: Display windows (low, high) per panel; None = 0.5-99.5th percentile.
_WINDOWS: dict[str, tuple[float, float] | None] = {
    "labels": (0.0, float(N_TISSUES - 1)),
    "CT": (-250.0, 350.0),
    "MR T1-w": None,
    "MR T2-w": None,
    "CBCT": (-250.0, 350.0),
    "PET full": (0.0, 10.0),
    "PET 1/20": (0.0, 10.0),
}


def subject_images(site: Site | str, seed: int, index: int) -> tuple[Anatomy, dict[str, Image]]:
    """All modalities of one anatomy (seeded like dataset subject ``index`` of the mr-to-ct task)."""
    from models.simulation.cbct import simulate_cbct
    from models.simulation.pet import simulate_pet

    rng = subject_rng(seed, "mr-to-ct", site, index)
    anatomy = make_anatomy(site, rng)
    ct = simulate_ct(anatomy, rng, CTParams.random(rng))
    images: dict[str, Image] = {"labels": anatomy.dominant().astype(np.float32), "CT": ct}
    images["MR T1-w"] = simulate_mr(anatomy, rng, MRParams.random(rng, "t1"))
    images["MR T2-w"] = simulate_mr(anatomy, rng, MRParams.random(rng, "t2"))
    images["CBCT"] = simulate_cbct(ct, anatomy.grid.spacing_mm, rng)
    pet = simulate_pet(suv_truth(anatomy, rng), anatomy.grid.spacing_mm, rng, drfs=(20,))
    images["PET full"] = pet.full
    images["PET 1/20"] = pet.low[20]
    return anatomy, images


def _show(ax: Any, image: Image, name: str, aspect: float = 1.0) -> None:
    window = _WINDOWS.get(name)
    lo, hi = window if window else (float(np.percentile(image, 0.5)), float(np.percentile(image, 99.5)))
    cmap = "tab20" if name == "labels" else ("gray_r" if name.startswith("PET") else "gray")
    ax.imshow(image, cmap=cmap, vmin=lo, vmax=hi, aspect=aspect, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def _save(fig: Any, path: Path) -> None:
    with atomic_file(path, overwrite=True) as tmp:
        fig.savefig(tmp, format="png", dpi=72)


def write_figures(out_dir: str | Path, *, seed: int = 0, subjects: int = 3) -> list[Path]:
    """Write the axial and orthogonal-plane PNGs for both sites; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for site in Site:
        cases = [subject_images(site, seed, i) for i in range(subjects)]
        names = list(cases[0][1])
        fig, axes = plt.subplots(subjects, len(names), figsize=(1.6 * len(names), 1.75 * subjects))
        for row, (anatomy, images) in enumerate(cases):
            k = anatomy.shape[0] // 2
            for col, name in enumerate(names):
                _show(axes[row, col], images[name][k], name)
                if row == 0:
                    axes[row, col].set_title(name, fontsize=8)
        title = f"Simulated {site.value}: mid-axial slice, {subjects} subjects (seed {seed})"
        fig.suptitle(title, fontsize=9)
        fig.tight_layout()
        path = out / f"simulation_{site.value}_axial.png"
        _save(fig, path)
        plt.close(fig)
        written.append(path)
        anatomy, images = cases[0]
        sx, sy, sz = anatomy.grid.spacing_mm
        fig, axes = plt.subplots(1, 4, figsize=(8.0, 2.6))
        _, ny, nx = anatomy.shape
        for col, (name, plane) in enumerate(
            (("CT", "coronal"), ("MR T1-w", "coronal"), ("CT", "sagittal"), ("MR T2-w", "sagittal"))
        ):
            vol = images[name]
            cut = vol[::-1, ny // 2, :] if plane == "coronal" else vol[::-1, :, nx // 2]
            _show(axes[col], cut, name, aspect=sz / (sx if plane == "coronal" else sy))
            axes[col].set_title(f"{name} {plane}", fontsize=8)
        fig.tight_layout()
        path = out / f"simulation_{site.value}_planes.png"
        _save(fig, path)
        plt.close(fig)
        written.append(path)
    return written


if __name__ == "__main__":  # pragma: no cover
    for written_path in write_figures(sys.argv[1] if len(sys.argv) > 1 else "docs/figures"):
        print(written_path, f"{written_path.stat().st_size / 1024:.0f} kB")
