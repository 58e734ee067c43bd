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

``radtranslate floor --task mr-to-ct --seed 1001 --subjects 12`` (or ``--task pet --drf 10``) prints
the per-subject figures and their means as JSON.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np

from export.evaluate import ct_metrics, pet_scores
from models.simulation.anatomy import Site
from models.simulation.dataset import DatasetOptions, Task, label_map, subject_ct, subject_pet
from models.simulation.tissues import hu_table
from service.errors import OptionError
from service.volume import Modality, Unit

__all__ = ["anatomy_oracle", "noise_free_oracle", "register"]


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
        The card's CT metrics (:func:`export.evaluate.ct_metrics`: ``mae_hu``, ``me_hu``, ``psnr_db``,
        ``mae_band_hu_<band>`` ...) in the subject's body mask.
    """
    options = DatasetOptions(
        task=Task.MR_TO_CT, site=Site.parse(site), subjects=index + 1, seed=seed, downscale=downscale
    )
    anatomy, ct, _, _ = subject_ct(options, index)
    mean, _ = hu_table()
    oracle = np.clip(anatomy.average(mean), -1024.0, 3071.0)
    reference = anatomy.volume(ct, Modality.CT, Unit.HU)
    return ct_metrics(reference, reference.with_array(oracle), anatomy.body)


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
    return pet_scores(pet.full, pet.low[int(drf)], out, anatomy.body, label_map(anatomy))


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "floor",
        help="score the oracles (best achievable) on a simulated held-out set, as the cards score a model",
        description=(
            "Re-simulate subjects 0..N-1 of a dataset seed and score the anatomy oracle (mr-to-ct) or the "
            "noise-free full-dose reconstruction (pet) with the cards' metrics; prints JSON."
        ),
    )
    p.add_argument("--task", required=True, choices=["mr-to-ct", "pet"])
    p.add_argument("--site", default="brain", choices=["brain", "pelvis"])
    p.add_argument("--seed", type=int, required=True, help="dataset seed (as simulate --seed)")
    p.add_argument("--subjects", type=int, required=True, help="score subjects 0 .. N-1")
    p.add_argument("--drf", type=int, default=10, help="PET: dose-reduction factor of the input")
    p.add_argument("--downscale", type=int, default=1, help="grid coarsening (1: the datasets' grid)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.subjects < 1:
        raise OptionError(f"--subjects must be ≥ 1, got {args.subjects}: pass the held-out set's size.")
    rows = [
        anatomy_oracle(args.site, args.seed, i, downscale=args.downscale)
        if args.task == "mr-to-ct"
        else noise_free_oracle(args.site, args.seed, i, drf=args.drf, downscale=args.downscale)
        for i in range(args.subjects)
    ]
    mean = {k: float(np.nanmean([np.nan if r.get(k) is None else r[k] for r in rows])) for k in rows[0]}
    print(json.dumps({"task": args.task, "seed": args.seed, "per_subject": rows, "mean": mean}, indent=1))
    return 0
