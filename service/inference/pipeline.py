"""File to file translation: read DICOM or an image file, translate, write DICOM or an image.

Input kind by path: a folder, a ``.dcm`` file or a file without suffix is DICOM (read with
:func:`service.dicom.reader.read_series`, the series selected by ``series_uid`` and the
model's input modality); ``.nii``, ``.nii.gz``, ``.mha``, ``.mhd``, ``.nrrd`` are image files
(read with :func:`service.imageio.read_image`). Image files carry no modality, so they are
read as the model's input modality and unit: the caller states them by choosing the model.

Output format (``output_format``, else from the output path): ``dicom`` (a folder: a
derived series written by :func:`service.dicom.writer.write_derived_series`), ``nifti``
(``.nii``/``.nii.gz``) or ``mha`` (``.mha``/``.mhd``). Outputs are written atomically; an
existing output is refused before any computation unless ``overwrite=True``.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from service.errors import OptionError, OutputError
from service.inference.engine import Engine
from service.volume import Volume

log = logging.getLogger("radtranslate.pipeline")

IMAGE_SUFFIXES = (".nii", ".nii.gz", ".mha", ".mhd", ".nrrd")


class OutputFormat(enum.StrEnum):
    """How the translated volume is written."""

    DICOM = "dicom"
    NIFTI = "nifti"
    MHA = "mha"

    @classmethod
    def parse(cls, value: OutputFormat | str) -> OutputFormat:
        """Accept a member or its value (case-insensitive)."""
        if isinstance(value, OutputFormat):
            return value
        try:
            return cls(str(value).strip().lower())
        except ValueError:
            raise OptionError(
                f"output_format must be one of {[f.value for f in cls]}, got {value!r}: pick one (--format)."
            ) from None


_SUFFIX_FORMAT = {
    ".nii": OutputFormat.NIFTI,
    ".nii.gz": OutputFormat.NIFTI,
    ".mha": OutputFormat.MHA,
    ".mhd": OutputFormat.MHA,
}


@dataclass(frozen=True)
class TranslationSummary:
    """What :func:`translate_path` did (no patient data: UIDs only as written)."""

    input_path: Path
    output_path: Path
    output_format: OutputFormat
    model: str
    version: str
    provider: str
    shape_zyx: tuple[int, int, int]
    timings_s: Mapping[str, float]
    output_series_uid: str | None
    warnings: tuple[str, ...] = ()


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def is_image_file(path: str | Path) -> bool:
    """True when ``path`` names a NIfTI/MHA/NRRD file (by suffix)."""
    return _suffix(Path(path)) in IMAGE_SUFFIXES


def output_format_for(path: str | Path, requested: OutputFormat | str | None) -> OutputFormat:
    """The output format: ``requested``, else from the suffix (no image suffix: DICOM folder).

    Raises
    ------
    OptionError
        ``requested`` contradicts the suffix.
    """
    by_suffix = _SUFFIX_FORMAT.get(_suffix(Path(path)))
    if requested is None:
        return by_suffix or OutputFormat.DICOM
    fmt = OutputFormat.parse(requested)
    if (fmt is OutputFormat.DICOM and by_suffix is not None) or (
        by_suffix is not None and fmt is not by_suffix
    ):
        raise OptionError(
            f"output {str(path)!r} has suffix {_suffix(Path(path))!r}, which contradicts format "
            f"{fmt.value!r}: "
            "change the suffix or the format."
        )
    return fmt


def read_input(path: Path, *, modality: str, unit: str, series_uid: str | None) -> Volume:
    """Read a DICOM series or an image file as ``modality``/``unit`` (see the module docstring)."""
    if is_image_file(path):
        if series_uid is not None:
            raise OptionError(
                f"series_uid applies to DICOM input, but {str(path)!r} is an image file: drop --series-uid."
            )
        from service.imageio import read_image

        log.info("reading an image file as %s in %s (the model's input)", modality, unit)
        image: Volume = read_image(path, modality=modality, unit=unit)
        return image
    from service.dicom.reader import read_series

    return read_series(path, series_uid=series_uid, modality=modality)


def translate_path(
    input_path: str | Path,
    output_path: str | Path,
    *,
    engine: Engine,
    model: str | None = None,
    task: str | None = None,
    site: str | None = None,
    version: str | None = None,
    series_uid: str | None = None,
    output_format: OutputFormat | str | None = None,
    overwrite: bool = False,
    progress: Callable[[str, float], None] | None = None,
) -> TranslationSummary:
    """Translate the series or image at ``input_path`` into ``output_path``.

    Raises
    ------
    InputError, NotFoundError, OutputError, NumericError, CancelledError
    """
    source, target = Path(input_path), Path(output_path)
    fmt = output_format_for(target, output_format)
    if target.exists() and not overwrite:
        raise OutputError(
            f"output {str(target)!r} already exists: choose another path or pass overwrite=True "
            "(--overwrite)."
        )
    if fmt is OutputFormat.DICOM and is_image_file(source):
        raise OptionError(
            f"DICOM output needs a DICOM input (its patient, study and frame of reference are copied), "
            f"but {str(source)!r} is an image file: write {target.name}.nii.gz or .mha instead."
        )
    card = engine.resolve(model=model, task=task, site=site, version=version)
    if progress is not None:
        progress("read", 0.0)
    volume = read_input(
        source, modality=card.input.modality.value, unit=card.input.unit.value, series_uid=series_uid
    )
    if progress is not None:
        progress("read", 1.0)
    result = engine.translate(volume, model=card.name, version=card.version, progress=progress)
    if progress is not None:
        progress("write", 0.0)
    series_uid_out: str | None = None
    if fmt is OutputFormat.DICOM:
        from service.dicom.writer import write_derived_series

        written = write_derived_series(
            result.volume, target, model_name=card.name, model_version=card.version, overwrite=overwrite
        )
        series_uid_out = written.series_instance_uid
    else:
        from service.imageio import write_image

        write_image(result.volume, target, overwrite=overwrite)
    if progress is not None:
        progress("write", 1.0)
    return TranslationSummary(
        input_path=source,
        output_path=target,
        output_format=fmt,
        model=result.model,
        version=result.version,
        provider=result.provider,
        shape_zyx=volume.shape,
        timings_s=result.timings_s,
        output_series_uid=series_uid_out,
        warnings=result.warnings,
    )
