"""Read SynthRAD-layout subject folders (simulated or real) into volumes on one grid.

A subject folder holds ``ct``, ``mr``, ``cbct``, ``pet_full``, ``pet_low_drfN`` and ``mask``
(and, for simulated data written with labels, ``labels``: the tissue label per voxel)
images as ``.nii.gz``, ``.nii`` or ``.mha`` (extensions may differ between files). Files without
stored modality/unit (real SynthRAD data) are read with the modality and unit their name
implies. The loader refuses a folder that lacks what the task needs, holds one image twice
(e.g. ``ct.nii.gz`` and ``ct.mha``), or whose images do not share one grid.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import SimpleITK as sitk

from service.errors import ImageFormatError, InputError
from service.imageio import read_image
from service.volume import Modality, Unit, Volume

if TYPE_CHECKING:  # dataset.py imports this module
    from models.simulation.dataset import SimulatedSubject

READ_EXTENSIONS = (".nii.gz", ".nii", ".mha")
_LOW_RE = re.compile(r"^pet_low_drf(\d+)$")
#: Image keys (file stems) and the modality/unit they imply.
IMAGE_KINDS: dict[str, tuple[Modality, Unit]] = {
    "ct": (Modality.CT, Unit.HU),
    "cbct": (Modality.CT, Unit.HU),
    "mr": (Modality.MR, Unit.MR_AU),
    "pet_full": (Modality.PT, Unit.SUVBW),
}
#: Images each task needs (besides ``mask``; PET also needs at least one ``pet_low_drfN``).
TASK_KEYS: dict[str, tuple[str, ...]] = {
    "mr-to-ct": ("ct", "mr"),
    "cbct-to-ct": ("ct", "cbct"),
    "pet": ("pet_full",),
}


@dataclass(frozen=True, eq=False)
class Subject:
    """A subject read from disk.

    Parameters
    ----------
    name
        Folder name.
    folder
        Folder path.
    images
        Volumes by key (``ct``, ``mr``, ``cbct``, ``pet_full``, ``pet_low_drfN``), all on one grid.
    mask
        Body mask, bool ``(z, y, x)`` on the same grid.
    labels
        :class:`~models.simulation.tissues.Tissue` label per voxel (uint8), when the folder has one.
    """

    name: str
    folder: Path
    images: dict[str, Volume]
    mask: npt.NDArray[np.bool_]
    labels: npt.NDArray[np.uint8] | None = None

    @property
    def low_dose_factors(self) -> tuple[int, ...]:
        """Dose reduction factors of the ``pet_low_drfN`` images, ascending."""
        found = (_LOW_RE.match(key) for key in self.images)
        return tuple(sorted(int(m.group(1)) for m in found if m))


def _stem(path: Path) -> str | None:
    lower = path.name.lower()
    for ext in READ_EXTENSIONS:
        if lower.endswith(ext) and len(lower) > len(ext):
            return path.name[: -len(ext)]
    return None


def _kind(key: str) -> tuple[Modality, Unit] | None:
    if key in IMAGE_KINDS:
        return IMAGE_KINDS[key]
    if _LOW_RE.match(key):
        return (Modality.PT, Unit.SUVBW)
    return None


def _files(folder: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        stem = _stem(path)
        if stem is None or stem.startswith(".") or not path.is_file():
            continue
        if stem not in ("mask", "labels") and _kind(stem) is None:
            continue
        if stem in found:
            raise InputError(
                f"subject folder {str(folder)!r} holds {stem!r} twice ({found[stem].name} and {path.name}): "
                "keep one file per image."
            )
        found[stem] = path
    return found


def _read_mask(path: Path) -> Volume:
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError:
        raise ImageFormatError(
            f"mask {str(path)!r} cannot be read: check that the file is complete."
        ) from None
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise ImageFormatError(f"mask {str(path)!r} must be a 3D scalar image: write a 3D 0/1 mask.")
    return Volume.from_sitk(sitk.Cast(image, sitk.sitkFloat32), modality=Modality.CT, unit=Unit.HU)


def _describe(volume: Volume) -> str:
    spacing = ", ".join(f"{v:g}" for v in volume.spacing_mm)
    origin = ", ".join(f"{v:.2f}" for v in volume.origin_mm)
    return f"shape {volume.shape}, spacing ({spacing}) mm, origin ({origin}) mm"


def load_subject(folder: str | Path, task: str | None = None) -> Subject:
    """Read one subject folder.

    Parameters
    ----------
    folder
        The subject folder.
    task
        ``"mr-to-ct"``, ``"cbct-to-ct"`` or ``"pet"``: refuse the folder unless it holds that
        task's images and a mask. ``None``: read whatever known images are present (a mask is
        still required).

    Raises
    ------
    InputError
        Folder missing, images missing, duplicated, or on different grids.
    """
    path = Path(folder)
    if not path.is_dir():
        raise InputError(f"subject folder {str(path)!r} does not exist: check the dataset path.")
    files = _files(path)
    needed = ["mask"]
    if task is not None:
        if task not in TASK_KEYS:
            allowed = ", ".join(TASK_KEYS)
            raise InputError(f"task must be one of {allowed}, got {task!r}: pass one of these.")
        needed += list(TASK_KEYS[task])
    missing = [key for key in needed if key not in files]
    if task == "pet" and not any(_LOW_RE.match(key) for key in files):
        missing.append("pet_low_drfN")
    if missing:
        present = ", ".join(sorted(files)) or "no images"
        raise InputError(
            f"subject folder {str(path)!r} lacks {', '.join(missing)} (found: {present}); "
            f"a {task or 'dataset'} subject needs {', '.join(needed)}: "
            "add the missing images or drop the subject."
        )
    mask = _read_mask(files.pop("mask"))
    labels = _read_mask(files.pop("labels")) if "labels" in files else None
    images: dict[str, Volume] = {}
    for key, file in files.items():
        kind = _kind(key)
        assert kind is not None  # _files keeps known keys only
        images[key] = read_image(file, modality=kind[0], unit=kind[1])
    for key, volume in images.items():
        if not volume.same_grid(mask):
            raise InputError(
                f"in {str(path)!r}, {key} ({_describe(volume)}) and mask ({_describe(mask)}) are on "
                "different grids: resample them onto one grid (e.g. the CT's) first."
            )
    if labels is not None and not labels.same_grid(mask):
        raise InputError(
            f"in {str(path)!r}, labels ({_describe(labels)}) and mask ({_describe(mask)}) are on "
            "different grids: resample them onto one grid (e.g. the CT's) first."
        )
    label_array = None if labels is None else np.rint(labels.array).astype(np.uint8)
    return Subject(path.name, path, images, mask.array > 0.5, label_array)


def as_read(subject: SimulatedSubject, root: str | Path) -> Subject:
    """A simulated subject as :func:`load_subject` reads it back from the folder ``simulate`` writes.

    The files hold float32 images, a uint8 mask (read back as ``> 0.5``) and uint8 labels (read back
    rounded): the same conversions are applied here, so the arrays equal the ones read from disk
    (the geometry too, to the precision the file formats keep).
    """
    images = {key: v.with_array(v.array.astype(np.float32)) for key, v in subject.images.items()}
    mask = np.asarray(subject.mask.array, dtype=np.float32) > 0.5
    labels = None
    if subject.labels is not None:
        labels = np.rint(np.clip(subject.labels.array, 0, 255)).astype(np.uint8)
    return Subject(subject.name, Path(root) / subject.name, images, mask, labels)


def iter_dataset(root: str | Path, task: str | None = None) -> Iterator[Subject]:
    """Yield the subjects under ``root`` in name order (hidden and temporary folders skipped)."""
    base = Path(root)
    if not base.is_dir():
        raise InputError(f"dataset folder {str(base)!r} does not exist: check the path.")
    folders = sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise InputError(
            f"dataset folder {str(base)!r} holds no subject folders: simulate or copy data into it."
        )
    for folder in folders:
        yield load_subject(folder, task)


def dataset_record(folder: str | Path) -> dict[str, Any] | None:
    """The ``dataset.json`` that ``radtranslate simulate`` wrote in ``folder``; ``None`` for a site's data."""
    path = Path(folder) / "dataset.json"
    return dict(json.loads(path.read_text())) if path.is_file() else None
