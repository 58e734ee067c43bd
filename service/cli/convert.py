"""``radtranslate convert INPUT OUTPUT``: DICOM series or image file to NIfTI/MHA/MHD/NRRD.

INPUT is a DICOM folder (or one DICOM file), or a ``.nii``/``.nii.gz``/``.mha``/``.mhd``/
``.nrrd`` file. OUTPUT must end in one of those extensions. Modality and unit are stored in
the output (see :mod:`service.imageio`). Prints what it wrote; never patient data.

Options:

- ``--series-uid UID``: which DICOM series, when the folder holds several (DICOM input only).
- ``--modality M``: for DICOM, select the series by modality; for an image, its modality
  when the file does not store it (must agree when it does).
- ``--unit U``: for DICOM PET, ``SUVbw`` (default) or ``Bq/ml``; for CT/MR it must be the
  unit the reader gives (HU, MR_AU); for an image, as ``--modality``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from service.errors import ImageFormatError, OptionError
from service.imageio import SUPPORTED_EXTENSIONS, image_format, read_image, write_image
from service.volume import Modality, Unit, Volume


def register(subparsers: Any) -> None:
    """Add the ``convert`` subcommand."""
    parser = subparsers.add_parser(
        "convert",
        help="convert a DICOM series or image file to NIfTI/MHA/MHD/NRRD",
        description="Read a DICOM series (folder or file) or an image file and write it as "
        f"{', '.join(SUPPORTED_EXTENSIONS)}, storing modality and unit in the file.",
    )
    parser.add_argument("input", help="DICOM folder or file, or an image file")
    parser.add_argument("output", help=f"output file ({', '.join(SUPPORTED_EXTENSIONS)})")
    parser.add_argument("--series-uid", default=None, help="Series Instance UID to read (DICOM input)")
    parser.add_argument(
        "--modality", default=None, help="CT, MR or PT (selects DICOM series; image modality)"
    )
    parser.add_argument("--unit", default=None, help="PET: SUVbw (default) or Bq/ml; image files: their unit")
    parser.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists")
    parser.set_defaults(func=run)


def _is_image_file(path: Path) -> bool:
    try:
        image_format(path)
    except ImageFormatError:
        return False
    return path.is_file()


def _read_dicom(path: Path, args: argparse.Namespace) -> Volume:
    from service.dicom import read_series

    modality = None if args.modality is None else Modality.parse(args.modality)
    unit = None if args.unit is None else Unit.parse(args.unit)
    pet_unit = unit if unit in (Unit.SUVBW, Unit.BQML) else Unit.SUVBW
    source: Any = path if path.is_dir() else [path]
    volume = read_series(source, series_uid=args.series_uid, modality=modality, pet_unit=pet_unit)
    if unit is not None and unit is not volume.unit:
        raise OptionError(
            f"--unit {unit.value} does not apply to the {volume.modality.value} series read, whose unit is "
            f"{volume.unit.value}: omit --unit (it only chooses SUVbw or Bq/ml for PET)."
        )
    return volume


def run(args: argparse.Namespace) -> int:
    """Convert ``args.input`` to ``args.output``; returns 0 or raises a typed error."""
    source = Path(args.input)
    target = Path(args.output)
    image_format(target)  # refuse an unsupported output before reading anything
    if not source.exists():
        raise OptionError(f"INPUT {str(source)!r} does not exist: pass a DICOM folder or an image file.")
    if _is_image_file(source):
        if args.series_uid is not None:
            raise OptionError(
                f"--series-uid applies to DICOM input, but INPUT {str(source)!r} is an image file: "
                "omit --series-uid."
            )
        volume = read_image(source, modality=args.modality, unit=args.unit)
    else:
        volume = _read_dicom(source, args)
    written = write_image(volume, target, overwrite=args.overwrite)
    z, y, x = volume.shape
    spacing = "x".join(f"{v:.6g}" for v in volume.spacing_mm)
    extra = f" (+ {written.with_suffix('.raw').name})" if image_format(written) == ".mhd" else ""
    print(
        f"wrote {written}{extra}: {volume.modality.value} in {volume.unit.value}, "
        f"{x}x{y}x{z} voxels (x*y*z), spacing {spacing} mm, "
        f"values {float(volume.array.min()):.6g} to {float(volume.array.max()):.6g}"
    )
    return 0
