"""Where a PET model's error is: by tissue, by spatial scale, in lesions (simulated held-out subjects).

python tools/pet_error_analysis.py --model pet_denoise_brain_drf10 [--version N] --data TEST/ [--subjects 4]

``--data`` must be a folder written by ``radtranslate simulate --task pet --labels``: each subject is
simulated again from the folder's ``dataset.json`` and its ``subject.json`` index, with the noise-free
full-dose reconstruction (:func:`models.simulation.dataset.subject_pet` with ``noise_free``, what
``radtranslate floor`` scores), and refused when the re-simulated full-dose image is not the folder's.
Printed, summed over the subjects, in the body mask:

- per tissue label (and the lesions together): voxels, mean full-dose SUV, the share of the model's
  squared error against the full dose, the mean squared error against the full dose of the model, of
  the noise-free image (what a perfect denoiser scores) and of the low-dose input, and the model's
  SUVmean bias against the noise-free image (%);
- against the noise-free image: the mean squared error of the model, the low-dose input, the low-dose
  input filtered with a Gaussian of sigma 1 voxel, the full-dose image; the share of the model's error
  coarser than a 3-voxel Gaussian; the in-plane fine detail SD (image minus its sigma 1.5 voxel
  in-plane Gaussian) of the model and of the noise-free image (below: the model smooths);
- per lesion: SUVmax of the model, the full dose and the noise-free image, and the signed bias of the
  model against each (%); and the signed lesion SUVmax bias against the full dose, averaged per subject
  and then over subjects (the card's lesion figure with its sign: docs/training.md's "signed mean").
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy import ndimage

from export.evaluate import lesion_suvmax_biases
from export.score import preset_for
from models.simulation.anatomy import Site
from models.simulation.dataset import LESION_LABEL_BASE, DatasetOptions, Task, subject_pet
from models.simulation.loader import iter_dataset
from models.simulation.tissues import Tissue
from service.errors import RadTranslateError
from service.inference.card import Task as ModelTask
from service.inference.engine import Engine
from service.inference.repository import default_repository_path


def tissue_name(label: int) -> str:
    return "lesions" if label >= LESION_LABEL_BASE else Tissue(label).name.lower()


def fine(image: np.ndarray, sigma_px: float) -> np.ndarray:
    """Image minus its in-plane Gaussian blur (``(z, y, x)``, sigma in voxels)."""
    return np.asarray(image - ndimage.gaussian_filter(image, (0.0, sigma_px, sigma_px)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--version", default=None)
    parser.add_argument("--data", required=True, type=Path, help="simulated held-out PET folder with labels")
    parser.add_argument("--subjects", type=int, default=4)
    parser.add_argument("--repository", type=Path, default=default_repository_path())
    args = parser.parse_args()
    if args.subjects < 1:
        parser.error(f"--subjects must be at least 1, got {args.subjects}: pass a positive count.")
    try:
        return run(args, parser)
    except RadTranslateError as exc:  # a missing folder or model, a damaged subject: named, no traceback
        parser.error(str(exc))


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    engine = Engine(args.repository)
    card = engine.get_model(args.model, args.version)
    if card.task is not ModelTask.PET_DENOISE:
        parser.error(f"--model {card.name!r} is a {card.task.value} model: pass a low-dose PET model.")
    preset = preset_for(card)  # refuses a card without an integer dose-reduction factor
    drf = int(preset.dataset_input.removeprefix("pet_low_drf"))
    if not (args.data / "dataset.json").is_file():
        parser.error(f"--data {str(args.data)!r} has no dataset.json: pass a folder that simulate wrote.")
    meta = json.loads((args.data / "dataset.json").read_text())
    if meta.get("task") != "pet" or not meta.get("labels") or drf not in meta.get("drfs", []):
        parser.error(f"--data {str(args.data)!r} is not a simulated PET set with labels and DRF {drf}.")
    options = DatasetOptions(
        task=Task.PET, site=Site.parse(meta["site"]), subjects=1, seed=int(meta["seed"]), drfs=(drf,),
        downscale=int(meta.get("downscale", 1)),
    )  # fmt: skip
    tissues: dict[
        int, np.ndarray
    ] = {}  # label -> [n, sum full, sse model, sse oracle, sse low, sum out, sum exp]
    scale = {
        k: 0.0 for k in ("model", "low", "gauss1", "full", "model_coarse", "fine_model", "fine_exp", "n")
    }
    lesions: list[str] = []
    signed: list[float] = []  # per subject: mean signed lesion SUVmax bias vs the full dose (%)
    analysed = 0
    for subject in iter_dataset(args.data, "pet"):
        if analysed >= args.subjects:
            break
        analysed += 1
        index = int(json.loads((subject.folder / "subject.json").read_text())["index"])
        _, pet = subject_pet(options, index, noise_free=True)
        full, low = subject.images[preset.dataset_target].array, subject.images[preset.dataset_input].array
        if pet.expected is None or not np.allclose(pet.full, full, atol=1e-3):
            parser.error(f"subject {subject.name!r}: re-simulating index {index} does not give its pet_full.")
        exp = pet.expected
        out = engine.translate(subject.images[preset.dataset_input], model=card.name, version=card.version)
        model = out.volume.array.astype(np.float64)
        body, labels = subject.mask, subject.labels
        if labels is None:
            parser.error(f"subject {subject.name!r} has no labels image: simulate with --labels.")
        for value in np.unique(labels[body]):
            key = min(int(value), LESION_LABEL_BASE)
            r = body & (labels == value)
            row = tissues.setdefault(key, np.zeros(7))
            row += [r.sum(), full[r].sum(), ((model - full)[r] ** 2).sum(), ((exp - full)[r] ** 2).sum(),
                    ((low - full)[r] ** 2).sum(), model[r].sum(), exp[r].sum()]  # fmt: skip
            if value >= LESION_LABEL_BASE:
                top = {k: float(a[r].max()) for k, a in (("model", model), ("full", full), ("exp", exp))}
                lesions.append(
                    f"{subject.name} lesion {int(value) - LESION_LABEL_BASE} ({int(r.sum())} voxels): SUVmax "
                    f"model {top['model']:.2f}, full {top['full']:.2f}, noise-free {top['exp']:.2f}; bias vs "
                    f"full {100 * (top['model'] / top['full'] - 1):+.1f} %, vs noise-free "
                    f"{100 * (top['model'] / top['exp'] - 1):+.1f} %"
                )
        # The lesions and biases the card's lesion figure averages, with their sign.
        biases = lesion_suvmax_biases(full, model, labels)
        if biases:
            signed.append(float(np.mean(list(biases.values()))))
        err = np.where(body, model - exp, 0.0)
        scale["model"] += float((err[body] ** 2).sum())
        scale["low"] += float(((low - exp)[body] ** 2).sum())
        scale["gauss1"] += float(((ndimage.gaussian_filter(low, 1.0) - exp)[body] ** 2).sum())
        scale["full"] += float(((full - exp)[body] ** 2).sum())
        scale["model_coarse"] += float((ndimage.gaussian_filter(err, 3.0)[body] ** 2).sum())
        scale["fine_model"] += float((fine(model, 1.5)[body] ** 2).sum())
        scale["fine_exp"] += float((fine(exp, 1.5)[body] ** 2).sum())
        scale["n"] += float(body.sum())
        print(f"{subject.name}: analysed", flush=True)
    total = sum(row[2] for row in tissues.values())
    print(f"\n{card.name} v{card.version}, {analysed} subjects, body mask")
    print(
        "tissue           voxels  SUV   share  MSE model  MSE noise-free  MSE low  SUVmean bias vs noise-free"
    )
    for key, row in sorted(tissues.items(), key=lambda kv: -kv[1][2]):
        print(
            f"{tissue_name(key):15s} {int(row[0]):7d} {row[1] / row[0]:5.2f} {100 * row[2] / total:5.1f} % "
            f"{row[2] / row[0]:9.4f} {row[3] / row[0]:15.4f} {row[4] / row[0]:8.4f} "
            f"{100 * (row[5] / row[6] - 1):+8.1f} %"
        )
    v = scale["n"]
    print(
        f"against the noise-free image (MSE, SUV^2): model {scale['model'] / v:.4f}, low-dose "
        f"{scale['low'] / v:.4f}, low-dose Gaussian sigma 1 voxel {scale['gauss1'] / v:.4f}, full dose "
        f"{scale['full'] / v:.4f}; share of the model's error coarser than 3 voxels "
        f"{100 * scale['model_coarse'] / scale['model']:.0f} %; fine detail SD model "
        f"{np.sqrt(scale['fine_model'] / v):.3f}, noise-free {np.sqrt(scale['fine_exp'] / v):.3f} SUV"
    )
    if signed:
        print(
            f"lesion SUVmax bias vs full dose, signed, mean of {len(signed)} subjects' means: "
            f"{np.mean(signed):+.2f} %"
        )
    print("\n".join(lesions))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
