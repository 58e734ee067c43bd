"""How well could any model do on the simulated held-out sets? Oracles scored with the cards' metrics.

**MR→sCT: the anatomy oracle.** A simulated CT is the partial-volume average of the subject's
tissue HU + texture + noise (:mod:`models.simulation.ct`). The subject's tissue HU are drawn around
the literature table's means, and texture and noise are random fields independent of the MR. A
model that sees the MR can at best recover the anatomy (which tissue is where, to sub-voxel
precision); it cannot know the subject's draws. The anatomy oracle predicts exactly that: the
partial-volume average of the table means. Its error against the simulated CT (the SynthRAD
metrics of the cards, in the body mask) is a practical floor for MR→sCT on this simulation. It is
not a floor for CBCT→CT: a CBCT carries the subject's own tissue values and texture.

**Low-dose PET: the noise-free oracle.** The full-dose reference is itself a noisy reconstruction,
with Poisson noise independent of the low-dose image's. No denoiser can predict that noise, so the
best any model can do is the reconstruction of the *expected* (noise-free) full-dose sinogram
(:func:`models.simulation.pet.simulate_pet` with ``noise_free``). Scored like the cards (PSNR gain
over the low-dose input, organ SUVmean and lesion SUVmax bias against the noisy full dose), it is
the ceiling of the PET targets on this simulation: its lesion SUVmax bias, for instance, is the
bias that the full-dose image's own noise puts on SUVmax.

``python -m export.floor --task mr-to-ct --seed 1001 --subjects 12`` (or ``--task pet --drf 10``).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np

from export.evaluate import label_biases, psnr_db
from models.simulation.anatomy import Site
from models.simulation.dataset import DatasetOptions, Task, label_map, subject_ct, subject_pet
from models.simulation.tissues import hu_table
from service.validation.metrics import image_metrics
from service.volume import Modality, Unit

__all__ = ["anatomy_oracle", "main", "noise_free_oracle"]


def anatomy_oracle(site: Site | str, seed: int, index: int, *, downscale: int = 1) -> dict[str, Any]:
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
    dict
        ``mae_hu``, ``me_hu``, ``psnr_db`` and ``mae_band_hu_<band>`` in the subject's body mask.
    """
    options = DatasetOptions(
        task=Task.MR_TO_CT, site=Site.parse(site), subjects=index + 1, seed=seed, downscale=downscale
    )
    anatomy, ct, _, _ = subject_ct(options, index)
    mean, _ = hu_table()
    oracle = np.clip(anatomy.average(mean), -1024.0, 3071.0)
    m = image_metrics(
        anatomy.volume(ct, Modality.CT, Unit.HU),
        anatomy.volume(oracle, Modality.CT, Unit.HU),
        anatomy.mask_volume(),
    )
    bands = {f"mae_band_hu_{k}": v for k, v in m.mae_band_hu.items()}
    return {"mae_hu": m.mae_hu, "me_hu": m.me_hu, "psnr_db": m.psnr_db, **bands}


def noise_free_oracle(
    site: Site | str, seed: int, index: int, *, drf: int = 10, downscale: int = 1
) -> dict[str, Any]:
    """The noise-free full-dose image scored as a PET model is (:func:`export.evaluate.evaluate_pet`).

    Parameters are those of :func:`anatomy_oracle`, plus ``drf``, the dose-reduction factor of the
    low-dose input the gain is measured against. Returns ``psnr_db``, ``input_psnr_db``,
    ``psnr_gain_db`` (dB), ``body_suvmean_bias_percent`` and the organ/lesion bias summaries (%).
    """
    options = DatasetOptions(
        task=Task.PET, site=Site.parse(site), subjects=index + 1, seed=seed, drfs=(int(drf),),
        downscale=downscale,
    )  # fmt: skip
    anatomy, pet = subject_pet(options, index, noise_free=True)
    out = pet.expected
    if out is None:  # simulate_pet returns it whenever noise_free is set
        raise RuntimeError("simulate_pet returned no noise-free image although noise_free=True.")
    full, low, mask = pet.full, pet.low[int(drf)], anatomy.body
    row: dict[str, Any] = {
        "psnr_db": psnr_db(full, out, mask),
        "input_psnr_db": psnr_db(full, low, mask),
        "body_suvmean_bias_percent": 100 * (float(out[mask].mean()) / float(full[mask].mean()) - 1),
    }
    row["psnr_gain_db"] = row["psnr_db"] - row["input_psnr_db"]
    row.update(label_biases(full, out, label_map(anatomy)))
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--task", required=True, choices=["mr-to-ct", "pet"])
    parser.add_argument("--site", default="brain", choices=["brain", "pelvis"])
    parser.add_argument("--seed", type=int, required=True, help="dataset seed")
    parser.add_argument("--subjects", type=int, required=True, help="subjects 0 .. N-1")
    parser.add_argument("--drf", type=int, default=10, help="PET: dose-reduction factor of the input")
    parser.add_argument("--downscale", type=int, default=1, help="grid coarsening (1: the datasets' grid)")
    args = parser.parse_args(argv)
    rows = [
        anatomy_oracle(args.site, args.seed, i, downscale=args.downscale)
        if args.task == "mr-to-ct"
        else noise_free_oracle(args.site, args.seed, i, drf=args.drf, downscale=args.downscale)
        for i in range(args.subjects)
    ]
    mean = {k: float(np.nanmean([np.nan if r[k] is None else r[k] for r in rows])) for k in rows[0]}
    print(json.dumps({"per_subject": rows, "mean": mean}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
