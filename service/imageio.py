"""Read and write volumes as NIfTI (.nii, .nii.gz), MetaImage (.mha, .mhd + .raw) and NRRD (.nrrd).

Geometry: SimpleITK presents every format in LPS, like :class:`~service.volume.Volume`; NIfTI
files store RAS, so their affine is our LPS affine with the x and y rows negated (ITK does
this conversion on read and write). Values are written as float32.

Modality and unit are stored in the file so that a read needs no guessing:

- MHA/MHD and NRRD: header keys ``radtranslate_modality`` and ``radtranslate_unit``.
- NIfTI: the 80-character ``descrip`` header field, set to
  ``"radtranslate modality=<code> unit=<unit>"`` (NIfTI-1 only; ITK writes NIfTI-1).
  NIfTI stores the affine in float32: positions keep about 7 significant digits
  (< 3e-5 mm within 1 m of the origin).

:func:`read_image` refuses a file whose modality or unit is neither stored nor given, and a
given value that contradicts the stored one. DICOM provenance (the ``source`` series) is not
kept by these formats: volumes read from them have ``source=None``.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import tempfile
from pathlib import Path

import SimpleITK as sitk

from service.atomic import atomic_file
from service.errors import ImageFormatError, OutputError, VolumeError
from service.volume import Modality, Unit, Volume

__all__ = ["SUPPORTED_EXTENSIONS", "image_format", "read_image", "write_image"]

SUPPORTED_EXTENSIONS = (".nii", ".nii.gz", ".mha", ".mhd", ".nrrd")
MODALITY_KEY = "radtranslate_modality"
UNIT_KEY = "radtranslate_unit"
_NIFTI1_HEADER_SIZE = 348
_DESCRIP_OFFSET = 148
_DESCRIP_LENGTH = 80
_DESCRIP_RE = re.compile(r"radtranslate modality=(\S+) unit=(\S+)")


def image_format(path: str | os.PathLike[str]) -> str:
    """The supported extension ``path`` ends with (lower case), or raise :class:`ImageFormatError`."""
    name = Path(path).name.lower()
    for ext in sorted(SUPPORTED_EXTENSIONS, key=len, reverse=True):
        if name.endswith(ext) and len(name) > len(ext):
            return ext
    raise ImageFormatError(
        f"path {str(path)!r} has an unsupported extension: use one of {', '.join(SUPPORTED_EXTENSIONS)} "
        "(or a DICOM folder where a folder is accepted)."
    )


def _stored(image: sitk.Image, ext: str) -> tuple[str | None, str | None]:
    if ext in (".nii", ".nii.gz"):
        descrip = image.GetMetaData("descrip") if image.HasMetaDataKey("descrip") else ""
        match = _DESCRIP_RE.search(descrip)
        return (match.group(1), match.group(2)) if match else (None, None)
    modality = image.GetMetaData(MODALITY_KEY) if image.HasMetaDataKey(MODALITY_KEY) else None
    unit = image.GetMetaData(UNIT_KEY) if image.HasMetaDataKey(UNIT_KEY) else None
    return modality, unit


def _resolve(
    name: str,
    given: Modality | Unit | None,
    stored: str | None,
    path: Path,
    enum: type[Modality] | type[Unit],
) -> Modality | Unit:
    stored_value: Modality | Unit | None = None
    if stored is not None:
        try:
            stored_value = enum.parse(stored)
        except VolumeError:
            raise ImageFormatError(
                f"file {str(path)!r} stores {name} {stored!r}, which is not a known {name}: "
                "rewrite the file with write_image, or fix its header."
            ) from None
    if given is not None and stored_value is not None and given != stored_value:
        raise ImageFormatError(
            f"{name} {given.value!r} was given but file {str(path)!r} stores {stored_value.value!r}: "
            f"omit --{name} to use the stored value, or fix the file if it is wrong."
        )
    value = given if given is not None else stored_value
    if value is None:
        raise ImageFormatError(
            f"file {str(path)!r} does not store its {name} and none was given: pass {name}= "
            f"(CLI --{name}), e.g. {'CT' if name == 'modality' else 'HU'}."
        )
    return value


def read_image(
    path: str | os.PathLike[str],
    *,
    modality: Modality | str | None = None,
    unit: Unit | str | None = None,
) -> Volume:
    """Read a 3D scalar image file into a :class:`Volume` (array ``(z, y, x)``, LPS mm).

    Parameters
    ----------
    path
        A ``.nii``, ``.nii.gz``, ``.mha``, ``.mhd`` or ``.nrrd`` file.
    modality, unit
        Required when the file does not store them; must agree with stored values.

    Raises
    ------
    ImageFormatError
        Unknown extension, unreadable file, 4D or vector image, or modality/unit missing
        or contradicting the file.
    """
    file = Path(path)
    ext = image_format(file)
    given_modality = None if modality is None else Modality.parse(modality)
    given_unit = None if unit is None else Unit.parse(unit)
    if not file.is_file():
        raise ImageFormatError(f"image file {str(file)!r} does not exist: check the path.")
    try:
        image = sitk.ReadImage(str(file))
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise ImageFormatError(
            f"file {str(file)!r} cannot be read as {ext} ({first}): check that it is a complete {ext} file."
        ) from None
    dims, components = image.GetDimension(), image.GetNumberOfComponentsPerPixel()
    if dims != 3 or components != 1:
        raise ImageFormatError(
            f"file {str(file)!r} holds a {dims}D image with {components} component(s) per voxel; a volume "
            "must be 3D scalar: split 4D series or vector images into 3D scalar files first."
        )
    stored_modality, stored_unit = _stored(image, ext)
    mod = _resolve("modality", given_modality, stored_modality, file, Modality)
    uni = _resolve("unit", given_unit, stored_unit, file, Unit)
    return Volume.from_sitk(image, modality=mod, unit=uni)


def _set_nifti_descrip(path: Path, text: str) -> None:
    """Write ``text`` into the descrip field of an uncompressed NIfTI-1 file (in place)."""
    with path.open("r+b") as handle:
        size = int.from_bytes(handle.read(4), "little")
        if size != _NIFTI1_HEADER_SIZE:
            raise ImageFormatError(
                f"the NIfTI writer produced a header of {size} bytes, not NIfTI-1's 348, so modality "
                "and unit cannot be stored in descrip: write .mha or .nrrd instead."
            )
        field = text.encode("ascii")[: _DESCRIP_LENGTH - 1].ljust(_DESCRIP_LENGTH, b"\0")
        handle.seek(_DESCRIP_OFFSET)
        handle.write(field)


def _write_mhd(image: sitk.Image, final: Path, *, overwrite: bool) -> None:
    """MetaImage header + raw: both files are written in a temporary folder, then moved (raw first)."""
    raw = final.with_suffix(".raw")
    for target in (final, raw):
        if target.exists() and not overwrite:
            raise OutputError(
                f"output {str(target)!r} already exists: choose another path or pass overwrite=True "
                "(--overwrite)."
            )
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".partial", dir=final.parent))
    try:
        sitk.WriteImage(image, str(tmp / final.name), useCompression=False)
        os.replace(tmp / raw.name, raw)
        os.replace(tmp / final.name, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_image(volume: Volume, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Write ``volume`` as float32 to ``path`` (format from the extension), storing modality and unit.

    The file appears complete or not at all (``.mhd``: the ``.raw`` is moved into place
    before its header). Returns the path written.
    """
    final = Path(path)
    ext = image_format(final)
    image = volume.to_sitk()
    image.SetMetaData(MODALITY_KEY, volume.modality.value)
    image.SetMetaData(UNIT_KEY, volume.unit.value)
    if ext == ".mhd":
        _write_mhd(image, final, overwrite=overwrite)
        return final
    descrip = f"radtranslate modality={volume.modality.value} unit={volume.unit.value}"
    with atomic_file(final, overwrite=overwrite) as tmp:
        if ext == ".nii.gz":
            # Written uncompressed, descrip set, then compressed once.
            plain = tmp.with_name(tmp.name[: -len(".gz")])
            try:
                sitk.WriteImage(image, str(plain), useCompression=False)
                _set_nifti_descrip(plain, descrip)
                with plain.open("rb") as src, gzip.open(tmp, "wb", compresslevel=6) as dst:
                    shutil.copyfileobj(src, dst, length=1 << 22)
            finally:
                plain.unlink(missing_ok=True)
        else:
            sitk.WriteImage(image, str(tmp), useCompression=ext in (".mha", ".nrrd"))
            if ext == ".nii":
                _set_nifti_descrip(tmp, descrip)
    return final
