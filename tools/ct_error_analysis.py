"""Where a CT model's error is: detail passed through or restored, blur, alignment (held-out subjects).

python tools/ct_error_analysis.py --model cbct_to_ct_brain [--version N] --data TEST/ [--subjects 3]

For each subject, in the *interior soft tissue* (at least 8 mm inside the body mask, reference within
±150 HU), the fine detail of an image (the image minus its Gaussian blur of sigma 4 mm in plane) of the
reference CT, the input and the model output: its SD, and the correlations output-input,
output-reference and input-reference. A model that restores detail has output-reference above
input-reference; one that passes the input's detail through has output-input near 1. Also the
output's mean error in the soft-tissue (reference within ±200 HU) and bone (≥ 200 HU) parts of the
body. For CBCT inputs also: the in-plane Gaussian blur of the CT that best matches the CBCT (how
much blurrier the CBCT is), the MAE between the CT and that blurred copy of itself (the error of a
model that corrects every level but restores no resolution), and the best whole-pixel shift of the
CBCT against the CT (0 when the two are aligned).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy import ndimage

from models.simulation.loader import iter_dataset
from models.training.config import PRESETS
from models.training.dataset import DATASET_TASK
from service.errors import RadTranslateError
from service.inference.engine import Engine
from service.inference.repository import default_repository_path


def detail(image: np.ndarray, sigma_px: tuple[float, float]) -> np.ndarray:
    """Image minus its in-plane Gaussian blur (``(z, y, x)`` array, sigma in pixels (y, x))."""
    return np.asarray(image - ndimage.gaussian_filter(image, (0.0, *sigma_px)))


def corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--version", default=None)
    parser.add_argument("--data", required=True, type=Path, help="held-out folder (SynthRAD layout)")
    parser.add_argument("--subjects", type=int, default=3)
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
    if card.output.modality.value != "CT":
        parser.error(
            f"--model {card.name!r} translates to {card.output.modality.value}, not CT: pass a CT model."
        )
    preset = PRESETS[card.task]
    for n, subject in enumerate(iter_dataset(args.data, DATASET_TASK[preset.task])):
        if n >= args.subjects:
            break
        source = subject.images[preset.dataset_input]
        ct, inp = subject.images[preset.dataset_target].array, source.array
        out = engine.translate(source, model=card.name, version=card.version).volume.array
        sx, sy = source.spacing_mm[0], source.spacing_mm[1]
        sigma = (4.0 / sy, 4.0 / sx)
        inside = ndimage.binary_erosion(subject.mask, iterations=max(1, round(8.0 / min(sx, sy))))
        region = inside & (np.abs(ct) < 150)
        soft, bone = subject.mask & (np.abs(ct) < 200), subject.mask & (ct >= 200)
        d_ct, d_in, d_out = (detail(a, sigma)[region] for a in (ct, inp, out))
        line = (
            f"{subject.name}: detail SD reference {d_ct.std():.0f} HU, input {d_in.std():.0f}, output "
            f"{d_out.std():.0f}; corr output-input {corr(d_out, d_in):.2f}, output-reference "
            f"{corr(d_out, d_ct):.2f}, input-reference {corr(d_in, d_ct):.2f}; interior soft-tissue MAE "
            f"input {np.abs(inp - ct)[region].mean():.0f} HU, output {np.abs(out - ct)[region].mean():.0f} "
            f"HU; output ME soft tissue (reference -200..200 HU) {(out - ct)[soft].mean():+.1f} HU, "
            f"bone (≥ 200 HU) {(out - ct)[bone].mean():+.1f} HU"
        )
        if source.modality == subject.images[preset.dataset_target].modality:
            body = subject.mask
            blurred = {
                s: ndimage.gaussian_filter(ct, (0.0, s / sy, s / sx)) for s in (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)
            }
            blur = {s: float(np.abs(b - inp)[body].mean()) for s, b in blurred.items()}
            best_blur = min(blur, key=lambda s: blur[s])
            # What that much blur alone costs: the CT against its own blurred copy.
            own = float(np.abs(blurred[best_blur] - ct)[body].mean())
            shifts = {
                (dy, dx): float(np.abs(np.roll(inp, (dy, dx), axis=(1, 2)) - ct)[body].mean())
                for dy in (-1, 0, 1)
                for dx in (-1, 0, 1)
            }
            best_shift = min(shifts, key=lambda k: shifts[k])
            line += (
                f"; CT blur best matching the input: sigma {best_blur:g} mm (input-vs-CT MAE "
                f"{blur[0.0]:.0f} HU unblurred, {blur[best_blur]:.0f} HU blurred; that blur alone puts "
                f"the CT {own:.0f} HU from itself); best shift {best_shift} px"
            )
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
