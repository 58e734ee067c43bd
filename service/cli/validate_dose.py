"""``radtranslate validate dose``: dose of a simple plan on a CT and on a synthetic CT, and gamma.

Computes the same box (or N-field) 6 MV plan on the real CT and on the sCT with the
simple ray-trace engine of :mod:`service.validation.dose_calc` (NOT a clinical dose
engine: for a relative CT-vs-sCT check only), with the beam weights set on the CT, and
reports dose differences in the body and in a spherical PTV, and gamma pass rates.

Inputs (``--ct``, ``--sct``) are DICOM folders or ``.nii``/``.nii.gz``/``.mha``/``.mhd``/
``.nrrd`` files in HU, on the same grid. The default isocentre is the centre of the body
mask of the CT (largest region above -400 HU, holes filled); it is printed.

``--json OUT`` writes the full report; ``--dose-out DIR`` writes the two doses and their
difference (sCT - CT) in Gy as MHA files (modality RTDOSE) into a new folder.

Exit status: 0, or 1 when a gamma pass rate is below ``--fail-under`` (every criterion is
checked), or the usual error codes of :mod:`service.cli.main`.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from service.errors import ImageFormatError, OptionError, OutputError
from service.volume import Modality, Unit, Volume


def register_dose(validate_subparsers: Any) -> None:
    """Add the ``dose`` sub-command to the ``validate`` command's sub-parsers."""
    parser = validate_subparsers.add_parser(
        "dose",
        help="dose of a simple plan on CT and on sCT, and their gamma",
        description="Compute a simple 6 MV plan (N equally spaced square fields) on the CT and on the "
        "synthetic CT with the same beam weights, and report dose differences and gamma. Not a clinical "
        "dose engine: for a relative CT-vs-sCT check before a TPS is involved.",
    )
    parser.add_argument("--ct", required=True, help="real CT: DICOM folder or image file (HU)")
    parser.add_argument(
        "--sct", required=True, help="synthetic CT on the CT grid: DICOM folder or image file"
    )
    parser.add_argument("--beams", type=int, default=4, help="number of equally spaced fields (default 4)")
    parser.add_argument("--field-size-mm", type=float, default=100.0, help="square field side at isocentre")
    parser.add_argument(
        "--isocentre", default=None, help="x,y,z LPS in mm (default: centre of the CT body mask)"
    )
    parser.add_argument("--prescription-gy", type=float, default=2.0, help="dose at isocentre on the CT")
    parser.add_argument(
        "--criteria", default="3%/3mm,2%/2mm", help="gamma criteria (default 3%%/3mm,2%%/2mm)"
    )
    parser.add_argument(
        "--cutoff-percent", type=float, default=10.0, help="gamma low-dose cutoff (%% of max)"
    )
    parser.add_argument("--ptv-radius-mm", type=float, default=30.0, help="radius of the PTV sphere")
    parser.add_argument("--fail-under", type=float, default=None, help="exit 1 if a pass rate is below P %%")
    parser.add_argument("--json", default=None, help="write the full report as JSON to this file")
    parser.add_argument(
        "--dose-out",
        default=None,
        help="write dose_ct.mha, dose_sct.mha and dose_difference.mha (sCT - CT, Gy) into this new folder",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace --json / --dose-out if they exist")
    parser.set_defaults(func=run_dose)


def _parse_isocentre(text: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3 or not all(math.isfinite(v) for v in values):
        raise OptionError(
            f"--isocentre must be three numbers x,y,z (LPS, mm), got {text!r}: "
            "pass e.g. --isocentre 0,-20,15."
        )
    return (values[0], values[1], values[2])


def read_ct(path_text: str, flag: str) -> Volume:
    """Read a CT from a DICOM folder (or file) or an image file, in HU."""
    path = Path(path_text)
    if not path.exists():
        raise OptionError(f"{flag} {path_text!r} does not exist: pass a DICOM folder or an image file.")
    from service.imageio import image_format

    try:
        image_format(path)
        is_image = path.is_file()
    except ImageFormatError:
        is_image = False
    if is_image:
        from service.imageio import read_image

        volume = read_image(path, modality=Modality.CT, unit=Unit.HU)
    else:
        from service.dicom.reader import read_series

        volume = read_series(path if path.is_dir() else [path], modality=Modality.CT)
    return volume


def run_dose(args: argparse.Namespace) -> int:
    """Run ``validate dose``; returns 0, or 1 when ``--fail-under`` is not met."""
    from service.cli.main import EXIT_CHECK_FAILED, EXIT_OK
    from service.validation.dose_compare import body_centre_mm, compare_dose_on_ct_and_sct
    from service.validation.dose_plan import BeamPlan

    if args.fail_under is not None and not (math.isfinite(args.fail_under) and 0 <= args.fail_under <= 100):
        raise OptionError(
            f"--fail-under must be a percentage in [0, 100], got {args.fail_under!r}: pass e.g. 95."
        )
    for flag, target in (("--json", args.json), ("--dose-out", args.dose_out)):
        if target is not None and Path(target).exists() and not args.overwrite:
            raise OutputError(f"{flag} {target!r} already exists: choose another path or pass --overwrite.")
    iso_given = args.isocentre is not None
    iso = _parse_isocentre(args.isocentre) if iso_given else None
    ct = read_ct(args.ct, "--ct")
    sct = read_ct(args.sct, "--sct")
    if iso is None:
        iso = body_centre_mm(ct)
    plan = BeamPlan.equally_spaced(
        args.beams, iso, field_size_mm=args.field_size_mm, prescription_gy=args.prescription_gy
    )
    result = compare_dose_on_ct_and_sct(
        ct, sct, plan, args.criteria, cutoff_percent=args.cutoff_percent, ptv_radius_mm=args.ptv_radius_mm
    )
    report = result.to_dict()
    report["isocentre_source"] = "--isocentre" if iso_given else "centre of the CT body mask"
    failed = (
        [] if args.fail_under is None else [k for k, v in result.pass_rates().items() if v < args.fail_under]
    )
    report["fail_under_percent"] = args.fail_under
    report["passed"] = not failed
    _print_summary(result, report["isocentre_source"], failed)
    if args.json is not None:
        from service.atomic import atomic_file

        with atomic_file(args.json, overwrite=args.overwrite) as tmp:
            tmp.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    if args.dose_out is not None:
        _write_doses(result, Path(args.dose_out), overwrite=args.overwrite)
        print(f"wrote {args.dose_out}/dose_ct.mha, dose_sct.mha, dose_difference.mha")
    return EXIT_CHECK_FAILED if failed else EXIT_OK


def _write_doses(result: Any, folder: Path, *, overwrite: bool) -> None:
    from service.atomic import atomic_directory
    from service.imageio import write_image

    ct_dose: Volume = result.on_ct.dose
    sct_dose: Volume = result.on_sct.dose
    difference = sct_dose.with_array(sct_dose.array.astype("float64") - ct_dose.array)
    with atomic_directory(folder, overwrite=overwrite) as tmp:
        write_image(ct_dose, tmp / "dose_ct.mha")
        write_image(sct_dose, tmp / "dose_sct.mha")
        write_image(difference, tmp / "dose_difference.mha")


def _print_summary(result: Any, iso_source: str, failed: list[str]) -> None:
    iso = ", ".join(f"{v:.1f}" for v in result.plan.isocentre_mm)
    out = sys.stdout
    print("dose on CT vs sCT (simple 6 MV ray-trace; not a clinical dose engine)", file=out)
    print(f"isocentre ({iso}) mm LPS [{iso_source}]; {len(result.plan.beams)} fields", file=out)
    ct_gy, sct_gy = result.on_ct.isocentre_dose_gy, result.on_sct.isocentre_dose_gy
    print(f"isocentre dose: CT {ct_gy:.4f} Gy, sCT {sct_gy:.4f} Gy", file=out)
    for region in (result.body, result.ptv):
        d = region.to_dict()
        print(
            f"{region.region}: mean diff {d['mean_difference_gy']:+.4f} Gy "
            f"({d['mean_difference_percent_of_prescription']:+.2f} %), max |diff| "
            f"{d['max_abs_difference_gy']:.4f} Gy ({d['max_abs_difference_percent_of_prescription']:.2f} %)",
            file=out,
        )
    for name, rate in result.pass_rates().items():
        flag = "  BELOW --fail-under" if name in failed else ""
        print(f"gamma {name}: {rate:.2f} % pass{flag}", file=out)
