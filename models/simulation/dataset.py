"""Simulated paired datasets on disk in the SynthRAD layout, and a loader for any such folder.

Layout (one folder per subject; ``EXT`` is ``.nii.gz`` or ``.mha``)::

    ROOT/dataset.json                  task, site, seed, format, generator version
    ROOT/1BS0000/ct.EXT  mr.EXT  mask.EXT  subject.json          (task mr-to-ct)
    ROOT/2PS0000/ct.EXT  cbct.EXT  mask.EXT  subject.json        (task cbct-to-ct)
    ROOT/3BS0000/pet_full.EXT  pet_low_drf4.EXT ...  mask.EXT  subject.json   (task pet)
    (+ labels.EXT, uint8 majority tissue label per voxel, lesions as 100 + index, with ``write_labels``)

Subject ``i`` is drawn from ``SeedSequence(seed, spawn_key=(task, site, i))``, so its content
depends only on (seed, task, site, i): generating more subjects reproduces the first ones.
Each subject folder is written atomically (temporary folder, then rename), so a folder that
exists is complete. Masks are uint8 (1 = body); images float32 with modality and unit stored.
"""

from __future__ import annotations

import enum
import json
import os
import shutil
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import SimpleITK as sitk

from models.simulation.anatomy import Anatomy, Site, make_anatomy
from models.simulation.ct import CTParams, simulate_ct
from models.simulation.loader import Subject, as_read, iter_dataset, load_subject
from models.simulation.mr import MRParams, MRWeighting, simulate_mr
from models.simulation.pet import PETParams, PETSimulation, simulate_pet
from models.simulation.tissues import LESION_SUV_RANGE, N_TISSUES, suv_table
from service.atomic import atomic_directory, atomic_file
from service.errors import OptionError, OutputError
from service.imageio import write_image
from service.volume import Modality, Unit, Volume

__all__ = [
    "DatasetOptions",
    "SimulatedSubject",
    "Subject",
    "Task",
    "iter_dataset",
    "load_subject",
    "simulate_subject",
    "subject_name",
    "subject_rng",
    "write_dataset",
    "write_subject",
]

#: Version of the generator; stored in dataset.json (bump when outputs for a seed change).
#: "2": ``labels`` images also mark lesions (LESION_LABEL_BASE + k); every image is identical to version "1".
GENERATOR_VERSION = "2"
FORMATS = ("nii.gz", "mha")
DEFAULT_DRFS: tuple[int, ...] = (4, 10, 20, 50, 100)
#: In ``labels`` images lesion k (1, 2, ...) is labelled LESION_LABEL_BASE + k; tissues keep their value.
LESION_LABEL_BASE = 100


class Task(enum.StrEnum):
    """Translation task of a dataset."""

    MR_TO_CT = "mr-to-ct"
    CBCT_TO_CT = "cbct-to-ct"
    PET = "pet"

    @classmethod
    def parse(cls, value: Task | str) -> Task:
        """Accept a member or its value (case-insensitive)."""
        if isinstance(value, Task):
            return value
        try:
            return cls(str(value).strip().lower())
        except ValueError:
            allowed = ", ".join(t.value for t in cls)
            raise OptionError(f"task must be one of {allowed}, got {value!r}: pass one of these.") from None


_TASK_CODE = {Task.MR_TO_CT: 1, Task.CBCT_TO_CT: 2, Task.PET: 3}
_SITE_CODE = {Site.BRAIN: 1, Site.PELVIS: 2}


@dataclass(frozen=True)
class DatasetOptions:
    """What to simulate. ``weighting`` (MR) defaults to T1 for brain, T2 for pelvis."""

    task: Task
    site: Site
    subjects: int
    seed: int
    file_format: str = "nii.gz"
    weighting: MRWeighting | None = None
    drfs: tuple[int, ...] = DEFAULT_DRFS
    downscale: int = 1
    write_labels: bool = False
    cbct_oversample: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "task", Task.parse(self.task))
        object.__setattr__(self, "site", Site.parse(self.site))
        if self.weighting is not None:
            object.__setattr__(self, "weighting", MRWeighting.parse(self.weighting))
        fmt = str(self.file_format).lstrip(".").lower()
        if fmt not in FORMATS:
            raise OptionError(
                f"format must be one of {FORMATS}, got {self.file_format!r}: pass nii.gz or mha."
            )
        object.__setattr__(self, "file_format", fmt)
        if not 0 < int(self.subjects) <= 100_000:
            raise OptionError(f"subjects must be 1..100000, got {self.subjects!r}: pass a positive count.")
        if not 0 <= int(self.seed) < 2**63:
            raise OptionError(f"seed must be a non-negative integer < 2**63, got {self.seed!r}: pass e.g. 0.")
        if not 1 <= int(self.downscale) <= 8:
            raise OptionError(f"downscale must be 1..8, got {self.downscale!r}: pass 1 for the full grid.")
        k = self.cbct_oversample
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 4:
            raise OptionError(
                f"cbct_oversample must be 1..4, got {self.cbct_oversample!r}: pass 1 for detector bins and "
                "reconstruction at the voxel size, 2 for both twice as fine."
            )
        if k != 1 and self.task is not Task.CBCT_TO_CT:
            raise OptionError(
                f"cbct_oversample applies to task cbct-to-ct only, got {self.cbct_oversample!r} for "
                f"{self.task.value!r}: leave it at 1."
            )
        if not self.drfs or any(int(d) < 2 for d in self.drfs):
            raise OptionError(
                f"drfs must be dose reduction factors >= 2, got {self.drfs!r}: pass e.g. 4 10 20."
            )

    @property
    def mr_weighting(self) -> MRWeighting:
        """The MR contrast: given, else T1 (brain) / T2 (pelvis)."""
        if self.weighting is not None:
            return self.weighting
        return MRWeighting.T1 if self.site is Site.BRAIN else MRWeighting.T2

    def describe(self) -> dict[str, Any]:
        """dataset.json content (what must match to resume)."""
        return {
            "generator": "radtranslate.simulate",
            "generator_version": GENERATOR_VERSION,
            "task": self.task.value,
            "site": self.site.value,
            "seed": int(self.seed),
            "format": self.file_format,
            "mr_weighting": self.mr_weighting.value if self.task is Task.MR_TO_CT else None,
            "drfs": list(self.drfs) if self.task is Task.PET else None,
            "downscale": int(self.downscale),
            "labels": bool(self.write_labels),
            # only when set, so that datasets written before the option still resume
            **({"cbct_oversample": int(self.cbct_oversample)} if self.cbct_oversample != 1 else {}),
        }


def subject_name(task: Task | str, site: Site | str, index: int) -> str:
    """SynthRAD-like folder name: task digit, site letter, 'S' (simulated), 4-digit index from 0."""
    return f"{_TASK_CODE[Task.parse(task)]}{Site.parse(site).value[0].upper()}S{index:04d}"


def subject_rng(seed: int, task: Task | str, site: Site | str, index: int) -> np.random.Generator:
    """The generator of subject ``index``: depends only on (seed, task, site, index)."""
    key = (_TASK_CODE[Task.parse(task)], _SITE_CODE[Site.parse(site)], int(index))
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(int(seed), spawn_key=key)))


def suv_truth(anatomy: Anatomy, rng: np.random.Generator) -> npt.NDArray[np.float32]:
    """Noise-free FDG SUVbw map with partial volume; lesions uniform in :data:`LESION_SUV_RANGE`."""
    mean, sd = suv_table()
    values = np.maximum(mean + sd * rng.standard_normal(N_TISSUES), 0.1 * mean).astype(np.float32)
    suv = anatomy.average(values)
    for index in range(1, int(anatomy.lesions.max(initial=0)) + 1):
        suv[anatomy.lesions == index] = np.float32(rng.uniform(*LESION_SUV_RANGE))
    return suv


@dataclass
class SimulatedSubject:
    """One subject in memory: images by key, body mask, provenance."""

    name: str
    images: dict[str, Volume]
    mask: Volume
    meta: dict[str, Any] = field(default_factory=dict)
    labels: Volume | None = None


def subject_ct(
    options: DatasetOptions, index: int
) -> tuple[Anatomy, npt.NDArray[np.float32], CTParams, np.random.Generator]:
    """The anatomy and CT of subject ``index`` of a CT-based task, and the generator, ready for the rest.

    The first steps of :func:`simulate_subject`, shared with analyses that need the anatomy
    behind a subject's CT (the error-floor oracles of ``export.floor``).
    """
    if options.task not in (Task.MR_TO_CT, Task.CBCT_TO_CT):
        raise OptionError(f"task must be mr-to-ct or cbct-to-ct for a CT, got {options.task.value!r}.")
    rng = subject_rng(options.seed, options.task, options.site, index)
    anatomy = make_anatomy(options.site, rng, downscale=options.downscale)
    ct_params = CTParams.random(rng)
    return anatomy, simulate_ct(anatomy, rng, ct_params), ct_params, rng


def subject_pet(
    options: DatasetOptions, index: int, *, noise_free: bool = False
) -> tuple[Anatomy, PETSimulation]:
    """The anatomy and PET images of subject ``index`` of a PET dataset (as :func:`simulate_subject`).

    ``noise_free`` also reconstructs the expected full-dose sinogram (:func:`simulate_pet`); the
    noisy images are the same either way.
    """
    if options.task is not Task.PET:
        raise OptionError(f"task must be pet for PET images, got {options.task.value!r}.")
    rng = subject_rng(options.seed, options.task, options.site, index)
    anatomy = make_anatomy(options.site, rng, downscale=options.downscale)
    pet_params = PETParams.random(rng)
    suv = suv_truth(anatomy, rng)
    pet = simulate_pet(suv, anatomy.grid.spacing_mm, rng, options.drfs, pet_params, noise_free=noise_free)
    return anatomy, pet


def label_map(anatomy: Anatomy) -> npt.NDArray[np.float32]:
    """Majority tissue label per voxel; lesions as ``LESION_LABEL_BASE`` + lesion index (float32)."""
    labels = anatomy.dominant().astype(np.float32)
    labels[anatomy.lesions > 0] = LESION_LABEL_BASE + anatomy.lesions[anatomy.lesions > 0]
    return labels


def simulate_subject(options: DatasetOptions, index: int) -> SimulatedSubject:
    """Simulate subject ``index`` of ``options`` (deterministic)."""
    meta: dict[str, Any] = {"index": index, **options.describe()}
    images: dict[str, Volume] = {}
    if options.task in (Task.MR_TO_CT, Task.CBCT_TO_CT):
        anatomy, ct, ct_params, rng = subject_ct(options, index)
        images["ct"] = anatomy.volume(ct, Modality.CT, Unit.HU)
        meta["ct_params"] = _jsonable(ct_params.__dict__)
        if options.task is Task.MR_TO_CT:
            mr_params = MRParams.random(rng, options.mr_weighting)
            images["mr"] = anatomy.volume(simulate_mr(anatomy, rng, mr_params), Modality.MR, Unit.MR_AU)
            meta["mr_params"] = _jsonable(mr_params.__dict__)
        else:
            from models.simulation.cbct import CBCTParams, simulate_cbct

            cbct_params = CBCTParams.random(rng)
            if options.cbct_oversample != 1:
                k = int(options.cbct_oversample)
                pixel_mm = min(anatomy.grid.spacing_mm[:2])
                cbct_params = replace(cbct_params, det_spacing_mm=pixel_mm / k, recon_oversample=k)
            cbct = simulate_cbct(ct, anatomy.grid.spacing_mm, rng, cbct_params)
            images["cbct"] = anatomy.volume(cbct, Modality.CT, Unit.HU)
            meta["cbct_params"] = _jsonable(cbct_params.__dict__)
    else:
        anatomy, pet = subject_pet(options, index)
        pet_params = pet.params
        images["pet_full"] = anatomy.volume(pet.full, Modality.PT, Unit.SUVBW)
        for drf, low in sorted(pet.low.items()):
            images[f"pet_low_drf{drf}"] = anatomy.volume(low, Modality.PT, Unit.SUVBW)
        meta["pet_params"] = _jsonable(pet_params.__dict__)
    meta["lesions"] = int(anatomy.lesions.max(initial=0))
    name = subject_name(options.task, options.site, index)
    labels = anatomy.volume(label_map(anatomy), Modality.CT, Unit.HU) if options.write_labels else None
    return SimulatedSubject(name, images, anatomy.mask_volume(), meta, labels)


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, enum.Enum):
            out[key] = value.value
        elif isinstance(value, np.generic):
            out[key] = value.item()
        elif isinstance(value, (int, float, str, bool)) or value is None:
            out[key] = value
        elif isinstance(value, (tuple, list)):
            out[key] = [v.item() if isinstance(v, np.generic) else v for v in value]
        else:
            out[key] = repr(value)
    return out


def write_mask(mask: Volume, path: Path) -> None:
    """Write a mask or label volume (integers 0..255) as uint8 (atomic)."""
    image = sitk.Cast(mask.to_sitk(), sitk.sitkUInt8)
    with atomic_file(path) as tmp:
        sitk.WriteImage(image, str(tmp), useCompression=True)


def write_subject(root: Path, subject: SimulatedSubject, file_format: str) -> Path:
    """Write one subject folder atomically under ``root``; returns the folder."""
    final = root / subject.name
    with atomic_directory(final) as tmp:
        for key, volume in subject.images.items():
            write_image(volume, tmp / f"{key}.{file_format}")
        write_mask(subject.mask, tmp / f"mask.{file_format}")
        if subject.labels is not None:
            write_mask(subject.labels, tmp / f"labels.{file_format}")
        with atomic_file(tmp / "subject.json") as meta_tmp:
            meta_tmp.write_text(json.dumps(subject.meta, indent=2, sort_keys=True) + "\n")
        _share(tmp)
    return final


def _share(folder: Path) -> None:
    """Give a finished folder the permissions of the umask (the temporaries are private, 0700/0600)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(folder, 0o777 & ~umask)
    for file in folder.iterdir():
        os.chmod(file, 0o666 & ~umask)


DATASET_JSON = "dataset.json"


def _prepare_root(root: Path, options: DatasetOptions, resume: bool) -> None:
    """Create ``root`` with its dataset.json, or check an existing one on resume."""
    described = options.describe()
    if root.exists() and not root.is_dir():
        raise OutputError(f"output {str(root)!r} exists and is not a folder: choose a folder path.")
    if root.is_dir() and any(root.iterdir()):
        if not resume:
            raise OutputError(
                f"output folder {str(root)!r} is not empty: choose a new folder, or pass --resume to "
                "complete a dataset simulated there with the same task, site, seed and format."
            )
        meta_path = root / DATASET_JSON
        try:
            existing = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            raise OutputError(
                f"cannot resume in {str(root)!r}: {DATASET_JSON} is missing or unreadable, so the folder was "
                "not written by 'radtranslate simulate': choose a new output folder."
            ) from None
        if existing != described:
            diff = {k: (existing.get(k), v) for k, v in described.items() if existing.get(k) != v}
            raise OutputError(
                f"cannot resume in {str(root)!r}: its dataset was simulated with other settings "
                f"(existing, requested) {diff}: rerun with the original settings or choose a new folder."
            )
        for stale in root.glob(".*.partial"):  # left by a killed run; never a complete subject
            shutil.rmtree(stale, ignore_errors=True)
        return
    root.mkdir(parents=True, exist_ok=True)
    with atomic_file(root / DATASET_JSON, overwrite=True) as tmp:
        tmp.write_text(json.dumps(described, indent=2, sort_keys=True) + "\n")


def _simulate_and_write(options: DatasetOptions, index: int, root: str) -> str:
    subject = simulate_subject(options, index)
    return str(write_subject(Path(root), subject, options.file_format))


def _load_shared(options: DatasetOptions) -> None:
    """Load what every subject reads (the MNI template of the head) once, before forking workers."""
    if options.site is Site.BRAIN:
        from models.simulation.anatomy_head import _brain_base

        _brain_base()


def _simulate_as_read(options: DatasetOptions, index: int, root: str) -> Subject:
    return as_read(simulate_subject(options, index), root)


def simulate_in_memory(options: DatasetOptions, root: str | Path, *, workers: int = 1) -> list[Subject]:
    """All subjects of ``options`` in memory, as :func:`write_dataset` then the loader would give them.

    For a machine that cannot write or read image files (``tools/train_simulated.py``); the subjects'
    folders are named under ``root`` but nothing is written. ``workers`` processes, name order.
    """
    if not 1 <= workers <= 64:
        raise OptionError(f"workers must be 1..64, got {workers!r}: pass the number of CPU cores to use.")
    root = str(root)
    if workers == 1:
        return [_simulate_as_read(options, i, root) for i in range(options.subjects)]
    _load_shared(options)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(_simulate_as_read, options, i, root) for i in range(options.subjects)]
        return [f.result() for f in futures]


def write_dataset(
    root: str | os.PathLike[str],
    options: DatasetOptions,
    *,
    workers: int = 1,
    resume: bool = False,
    progress: Callable[[int], None] | None = None,
) -> list[Path]:
    """Simulate ``options.subjects`` subjects into ``root`` (SynthRAD layout); return their folders.

    Parameters
    ----------
    root
        Output folder: must be absent or empty, unless ``resume``.
    options
        Task, site, count, seed, format.
    workers
        Processes simulating in parallel (1 = in this process).
    resume
        Complete an interrupted dataset: existing subject folders (complete by construction) are
        kept, the others simulated; refused if the folder's dataset.json differs from ``options``.
    progress
        Called with the number of subjects finished so far (for a progress bar), including skipped ones.
    """
    if not 1 <= workers <= 64:
        raise OptionError(f"workers must be 1..64, got {workers!r}: pass the number of CPU cores to use.")
    base = Path(root)
    _prepare_root(base, options, resume)
    names = [subject_name(options.task, options.site, i) for i in range(options.subjects)]
    todo = [i for i, name in enumerate(names) if not (base / name).is_dir()]
    done = options.subjects - len(todo)
    if progress is not None:
        progress(done)
    if workers == 1 or len(todo) <= 1:
        for index in todo:
            _simulate_and_write(options, index, str(base))
            done += 1
            if progress is not None:
                progress(done)
    else:
        _load_shared(options)
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(_simulate_and_write, options, i, str(base)) for i in todo]
            for future in as_completed(futures):
                future.result()
                done += 1
                if progress is not None:
                    progress(done)
    return [base / name for name in names]
