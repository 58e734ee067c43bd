"""``radtranslate example``: the main job on the bundled example, end to end.

Translates the example's simulated MR DICOM series with the shipped MR→sCT model (in-process
engine), writes the synthetic CT as a DICOM series, reads it back as a TPS would, and validates it
against the example's CT: image metrics in HU (SynthRAD convention) and the dose differences and
gamma pass rates of a simple 4-field photon plan computed on the CT and on the sCT (``--no-dose`` skips it).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from service.atomic import atomic_file
from service.errors import NotFoundError, OptionError

#: Environment variable overriding where the bundled examples are.
EXAMPLES_ENV = "RADTRANSLATE_EXAMPLES"
EXAMPLE_NAME = "brain-sim-9001"
EXAMPLE_MODEL = "mr_to_ct_brain"  # the shipped MR→sCT model for the example's site


def examples_root() -> Path:
    """``$RADTRANSLATE_EXAMPLES``, else ``examples/`` beside the installed source tree."""
    env = os.environ.get(EXAMPLES_ENV)
    return Path(env) if env else Path(__file__).resolve().parents[2] / "examples"


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "example",
        help="translate the bundled simulated MR series to sCT with the shipped model and validate it",
    )
    p.add_argument("--out", type=Path, default=Path("radtranslate-example"), help="output folder")
    p.add_argument("--models", type=Path, default=None, help="model repository (default: the shipped one)")
    p.add_argument(
        "--model",
        default=EXAMPLE_MODEL,
        help=f"MR→sCT model to use (default {EXAMPLE_MODEL}: the example is a brain series)",
    )
    p.add_argument(
        "--no-dose", action="store_true", help="skip the dose comparison (4-field plan on CT and sCT, gamma)"
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier output")
    p.set_defaults(func=run)


def _table(rows: list[tuple[str, str]]) -> str:
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k.ljust(width)}  {v}" for k, v in rows)


def run(args: argparse.Namespace) -> int:
    from service.dicom.reader import read_series
    from service.imageio import read_image
    from service.inference.card import Site, Task
    from service.inference.engine import Engine
    from service.inference.pipeline import translate_path
    from service.inference.repository import default_repository_path
    from service.validation.metrics import image_metrics

    example = examples_root() / EXAMPLE_NAME
    if not (example / "mr").is_dir():
        raise NotFoundError(
            f"the bundled example is not at {str(example)!r}: "
            f"run from a source checkout or set {EXAMPLES_ENV}."
        )
    engine = Engine(args.models or default_repository_path())
    card = engine.resolve(model=args.model)
    if card.task is not Task.MR_TO_CT or card.site not in (Site.BRAIN, Site.ANY):
        raise OptionError(
            f"--model {args.model!r} does {card.task.value} for site {card.site.value}, but the bundled "
            "example is a brain MR with its CT: pick an MR→sCT model for the brain "
            f"(default {EXAMPLE_MODEL})."
        )
    sct_dir = args.out / "sct"
    summary = translate_path(
        example / "mr",
        sct_dir,
        engine=engine,
        model=card.name,
        version=card.version,
        output_format="dicom",
        overwrite=args.overwrite,
    )
    sct = read_series(sct_dir)
    ct = read_series(example / "ct")
    mask = read_image(example / "mask.nii.gz")
    metrics = image_metrics(ct, sct, mask=mask).to_dict()
    result: dict[str, Any] = {
        "input": str(example / "mr"),
        "output": str(sct_dir),
        "model": summary.model,
        "version": summary.version,
        "provider": summary.provider,
        "timings_s": {k: round(v, 3) for k, v in summary.timings_s.items()},
        "image_metrics": metrics,
    }
    if not args.no_dose:
        from service.validation.dose_compare import body_centre_mm, compare_dose_on_ct_and_sct
        from service.validation.dose_plan import BeamPlan

        plan = BeamPlan.equally_spaced(4, body_centre_mm(ct), field_size_mm=60.0)
        result["dose"] = compare_dose_on_ct_and_sct(ct, sct, plan, ("3%/3mm", "2%/2mm")).to_dict()
    with atomic_file(args.out / "validation.json", overwrite=True) as tmp:
        tmp.write_text(json.dumps(result, indent=2, default=str) + "\n")
    if args.json:
        print(json.dumps(result, indent=2, default=str))
        return 0
    print(f"sCT series written to {sct_dir} by {summary.model} v{summary.version} on {summary.provider}")
    print("\nImage agreement with the example's CT, inside its body mask (SynthRAD convention):")
    bands = metrics.get("mae_band_hu", {})
    rows = [
        ("MAE", f"{metrics['mae_hu']:.1f} HU"),
        ("ME", f"{metrics['me_hu']:+.1f} HU"),
        ("RMSE", f"{metrics['rmse_hu']:.1f} HU"),
        ("PSNR", f"{metrics['psnr_db']:.2f} dB"),
        ("SSIM", f"{metrics['ssim']:.3f}" if metrics.get("ssim") is not None else "n/a"),
    ]
    rows += [
        (f"MAE {band.replace('_', ' ')}", f"{value:.1f} HU")
        for band, value in bands.items()
        if value is not None
    ]
    print(_table(rows))
    if "dose" in result:
        dose = result["dose"]
        print("\nDose of a 4-field 6 MV box plan (60 mm fields, 2 Gy at the body centre) on CT vs on sCT:")
        rows = [
            ("PTV mean dose difference", f"{dose['ptv']['mean_difference_percent_of_prescription']:+.2f} %"),
            (
                "body mean dose difference",
                f"{dose['body']['mean_difference_percent_of_prescription']:+.2f} %",
            ),
        ]
        rows += [
            (f"gamma {r['criterion']} (global, 10 % cutoff)", f"{r['pass_rate_percent']:.2f} % pass")
            for r in dose["gamma"]["results"]
        ]
        print(_table(rows))
    print(f"full result: {args.out / 'validation.json'}")
    print("Simulated data and a model trained on simulated anatomy: not for clinical use.")
    return 0
