"""How well could any model do? The error floor that the simulation's randomness puts under sCT metrics.

A simulated CT is ``partial-volume average of the subject's tissue HU`` + ``texture`` + ``noise``
(:mod:`models.simulation.ct`). The subject's tissue HU are drawn around the literature table's
means, and texture and noise are random fields independent of the MR. A model that sees the MR
can at best recover the anatomy (which tissue is where, to sub-voxel precision); it cannot know
the subject's draws. The *anatomy oracle* predicts exactly that: the partial-volume average of
the table means. Its error against the simulated CT, with the SynthRAD metrics the cards use
(:func:`service.validation.metrics.image_metrics` in the body mask), is a practical floor for
MR→sCT on this simulation. It is not a floor for CBCT→CT: a CBCT carries the subject's own tissue
values and texture, so a model can do better there.

Run ``python -m models.simulation.floor --site brain --seed 1001 --subjects 12`` for the held-out set.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np

from models.simulation.anatomy import Site
from models.simulation.dataset import DatasetOptions, Task, subject_ct
from models.simulation.tissues import hu_table
from service.validation.metrics import ImageMetrics, image_metrics
from service.volume import Modality, Unit

__all__ = ["anatomy_oracle_metrics", "main"]


def anatomy_oracle_metrics(site: Site | str, seed: int, index: int, *, downscale: int = 1) -> ImageMetrics:
    """Metrics (HU) of the anatomy oracle against subject ``index`` of an MR→sCT dataset.

    Parameters
    ----------
    site
        ``brain`` or ``pelvis``.
    seed
        Dataset seed (as ``radtranslate simulate --seed``).
    index
        Subject index (0-based); the subject is the one ``simulate`` writes for this seed.
    downscale
        Grid coarsening factor, as :class:`~models.simulation.dataset.DatasetOptions` (1: full grid).

    Returns
    -------
    ImageMetrics
        MAE/ME/RMSE (HU), PSNR (dB), SSIM and HU-band MAE in the subject's body mask.
    """
    options = DatasetOptions(
        task=Task.MR_TO_CT, site=Site.parse(site), subjects=index + 1, seed=seed, downscale=downscale
    )
    anatomy, ct, _, _ = subject_ct(options, index)
    mean, _ = hu_table()
    oracle = np.clip(anatomy.average(mean), -1024.0, 3071.0)
    return image_metrics(
        anatomy.volume(ct, Modality.CT, Unit.HU),
        anatomy.volume(oracle, Modality.CT, Unit.HU),
        anatomy.mask_volume(),
    )


def _summary(metrics: ImageMetrics) -> dict[str, Any]:
    bands = {f"mae_band_hu_{k}": v for k, v in metrics.mae_band_hu.items()}
    return {"mae_hu": metrics.mae_hu, "me_hu": metrics.me_hu, "psnr_db": metrics.psnr_db, **bands}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--site", default="brain", choices=["brain", "pelvis"])
    parser.add_argument("--seed", type=int, required=True, help="dataset seed")
    parser.add_argument("--subjects", type=int, required=True, help="subjects 0 .. N-1")
    parser.add_argument("--downscale", type=int, default=1, help="grid coarsening (1: the datasets' grid)")
    args = parser.parse_args(argv)
    rows = [
        _summary(anatomy_oracle_metrics(args.site, args.seed, i, downscale=args.downscale))
        for i in range(args.subjects)
    ]
    mean = {k: float(np.mean([r[k] for r in rows if r[k] is not None])) for k in rows[0]}
    print(json.dumps({"per_subject": rows, "mean": mean}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
