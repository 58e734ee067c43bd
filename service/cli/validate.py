"""``radtranslate validate``: image metrics and gamma index for physicists.

- ``validate image --reference CT --candidate sCT [--mask M] [--json F] [--report F.html]``:
  MAE/ME/RMSE, PSNR, SSIM and MAE per HU band (see :mod:`service.validation.metrics`).
- ``validate gamma --reference DOSE --evaluated DOSE --criteria 3%/2mm,2%/2mm [--cutoff 10]
  [--local] [--fail-under 95] [--json F] [--report F.html]``: gamma pass rates (see
  :mod:`service.validation.gamma`); exit status 1 when a pass rate is below ``--fail-under``.
- ``validate dose`` (when :mod:`service.cli.validate_dose` is installed).

Inputs are DICOM folders or files, or ``.nii``/``.nii.gz``/``.mha``/``.mhd``/``.nrrd`` files.
JSON outputs are strict JSON: infinite or undefined values (PSNR of identical images) are
written as the strings ``"inf"``, ``"-inf"`` and ``"nan"``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from service.errors import OptionError

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add the ``validate`` command and its sub-commands."""
    parser = subparsers.add_parser(
        "validate",
        help="compare images (HU metrics) or doses (gamma index)",
        description="Validation for physicists: image metrics of a synthetic CT against a CT, and the gamma "
        "index of two dose distributions.",
    )
    sub = parser.add_subparsers(dest="validate_command", metavar="WHAT", required=True)
    image = sub.add_parser(
        "image",
        help="MAE, ME, RMSE, PSNR, SSIM and MAE per HU band of a candidate CT against a reference CT",
        description="Compare a candidate CT (e.g. synthetic CT) with a reference CT on the same grid, in HU, "
        "inside a body mask (given, or made from the reference: > -400 HU, largest component, holes filled).",
    )
    image.add_argument("--reference", required=True, help="reference CT: DICOM folder/file or image file")
    image.add_argument("--candidate", required=True, help="candidate CT on the same grid")
    image.add_argument(
        "--mask", default=None, help="body mask image file on the same grid (voxels > 0 inside)"
    )
    _outputs(image)
    image.set_defaults(func=run_image)
    gamma = sub.add_parser(
        "gamma",
        help="gamma index of an evaluated dose against a reference dose",
        description="Gamma index (pymedphys conventions: global or local dose criterion, low-dose cutoff on "
        "the reference, search step distance/interp-fraction up to max-gamma x distance; gamma <= 1 passes).",
    )
    gamma.add_argument("--reference", required=True, help="reference dose: RT Dose file/folder or image file")
    gamma.add_argument("--evaluated", required=True, help="evaluated dose: RT Dose file/folder or image file")
    gamma.add_argument("--criteria", default="3%/2mm", help="comma-separated, e.g. 3%%/2mm,2%%/2mm")
    gamma.add_argument("--cutoff", type=float, default=10.0, help="low-dose cutoff, %% of normalisation dose")
    gamma.add_argument("--local", action="store_true", help="local dose criterion (default global)")
    gamma.add_argument(
        "--normalisation-dose-gy",
        type=float,
        default=None,
        help="global normalisation (default: reference max)",
    )
    gamma.add_argument("--interp-fraction", type=int, default=10, help="search step = distance / this (10)")
    gamma.add_argument("--max-gamma", type=float, default=2.0, help="search radius = this x distance (2)")
    gamma.add_argument(
        "--prescribed-dose-gy", type=float, default=None, help="dose of relative value 1.0 (RELATIVE RT Dose)"
    )
    gamma.add_argument("--fail-under", type=float, default=None, help="exit 1 if a pass rate is below P %%")
    _outputs(gamma)
    gamma.set_defaults(func=run_gamma)
    try:
        from service.cli.validate_dose import register_dose
    except ModuleNotFoundError as exc:
        if exc.name != "service.cli.validate_dose":
            raise
    else:
        register_dose(sub)


def _outputs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", default=None, help="write the results as JSON to this file")
    parser.add_argument("--report", default=None, help="write a self-contained HTML report to this file")
    parser.add_argument("--overwrite", action="store_true", help="replace --json/--report files that exist")


def _read_ct(text: str, flag: str) -> Any:
    from service.volume import Modality, Unit

    path = Path(text)
    if not path.exists():
        raise OptionError(f"{flag} {text!r} does not exist: pass a DICOM folder or file, or an image file.")
    if path.is_file() and path.name.lower().endswith((".nii", ".nii.gz", ".mha", ".mhd", ".nrrd")):
        from service.imageio import read_image

        return read_image(path, modality=Modality.CT, unit=Unit.HU)
    from service.dicom.reader import read_series

    return read_series(path if path.is_dir() else [path], modality=Modality.CT)


def _read_mask(text: str) -> Any:
    import SimpleITK as sitk

    from service.errors import ImageFormatError
    from service.volume import Volume

    try:
        image = sitk.ReadImage(text)
    except RuntimeError:
        raise ImageFormatError(
            f"--mask {text!r} cannot be read as an image file: pass a .nii, .nii.gz, .mha, .mhd or "
            ".nrrd mask."
        ) from None
    # The Volume only carries the 0/1 mask and its grid; its modality/unit are not used.
    return Volume.from_sitk(sitk.Cast(image, sitk.sitkFloat32), modality="CT", unit="HU")


def _strict(value: Any) -> Any:
    """JSON has no infinity or NaN: write them as the strings "inf", "-inf" and "nan"."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_strict(v) for v in value]
    return value


def _write_json(path: str, payload: dict[str, Any], overwrite: bool) -> None:
    from service.atomic import atomic_file

    text = json.dumps(_strict(payload), indent=2, default=str, allow_nan=False)
    with atomic_file(path, overwrite=overwrite) as tmp:
        tmp.write_text(text, encoding="utf-8")


def run_image(args: argparse.Namespace) -> int:
    from service.cli.main import EXIT_OK
    from service.validation.metrics import body_mask, image_metrics
    from service.validation.report import input_digest, write_image_report

    reference = _read_ct(args.reference, "--reference")
    candidate = _read_ct(args.candidate, "--candidate")
    mask = _read_mask(args.mask) if args.mask else None
    metrics = image_metrics(reference, candidate, mask)
    inputs = {"reference": input_digest(args.reference), "candidate": input_digest(args.candidate)}
    if args.mask:
        inputs["mask"] = input_digest(args.mask)
    rows = [
        ("MAE (HU)", metrics.mae_hu),
        ("ME (HU)", metrics.me_hu),
        ("RMSE (HU)", metrics.rmse_hu),
        ("PSNR (dB)", metrics.psnr_db),
        ("SSIM", metrics.ssim),
    ] + [(f"MAE {band} (HU)", value) for band, value in metrics.mae_band_hu.items()]
    print(f"{'metric':<22}{'value':>12}")
    for name, value in rows:
        print(f"{name:<22}{'-' if value is None else f'{value:.4g}':>12}")
    print(f"mask: {metrics.mask_source}, {metrics.mask_voxels} voxels")
    if args.json:
        _write_json(args.json, {"inputs": inputs, "metrics": metrics.to_dict()}, args.overwrite)
    if args.report:
        shown = mask.array > 0 if mask is not None else body_mask(reference)
        write_image_report(
            args.report, reference, candidate, metrics, mask=shown, inputs=inputs, overwrite=args.overwrite
        )
    return EXIT_OK


def run_gamma(args: argparse.Namespace) -> int:
    from service.cli.main import EXIT_CHECK_FAILED, EXIT_OK
    from service.validation.dose_io import read_dose
    from service.validation.gamma import GammaOptions, gamma_volumes
    from service.validation.report import input_digest, write_gamma_report

    if args.fail_under is not None and not 0 <= args.fail_under <= 100:
        raise OptionError(
            f"--fail-under must be a percentage in [0, 100], got {args.fail_under}: pass e.g. 95."
        )
    options = GammaOptions(
        criteria=args.criteria,
        normalisation="local" if args.local else "global",
        normalisation_dose=args.normalisation_dose_gy,
        cutoff_percent=args.cutoff,
        interp_fraction=args.interp_fraction,
        max_gamma=args.max_gamma,
    )
    reference = read_dose(args.reference, prescribed_dose_gy=args.prescribed_dose_gy)
    evaluated = read_dose(args.evaluated, prescribed_dose_gy=args.prescribed_dose_gy)
    result = gamma_volumes(reference, evaluated, options)
    inputs = {"reference": input_digest(args.reference), "evaluated": input_digest(args.evaluated)}
    failed = [
        str(r.criterion)
        for r in result.results
        if args.fail_under is not None and not r.pass_rate_percent >= args.fail_under
    ]
    print(f"{'criterion':<12}{'pass %':>9}{'points':>10}{'failed':>9}{'uncovered':>11}")
    for r in result.results:
        print(
            f"{r.criterion!s:<12}{r.pass_rate_percent:>9.2f}{r.points_evaluated:>10}"
            f"{r.points_evaluated - r.points_passed:>9}{r.points_without_evaluated_dose:>11}"
        )
    print(
        f"{options.normalisation_mode.value} normalisation {result.normalisation_dose:.4g} Gy, "
        f"cutoff {result.cutoff_dose:.4g} Gy"
    )
    if args.json:
        payload = {"inputs": inputs, **result.to_dict(), "fail_under": args.fail_under, "failed": failed}
        _write_json(args.json, payload, args.overwrite)
    if args.report:
        write_gamma_report(args.report, reference, evaluated, result, inputs=inputs, overwrite=args.overwrite)
    if failed:
        print(f"FAILED: pass rate below {args.fail_under:g} % for {', '.join(failed)}", file=sys.stderr)
        return EXIT_CHECK_FAILED
    return EXIT_OK
