"""Model cards: what a model expects, produces and is for (schema ``radtranslate.card/v1``).

A card is a JSON object stored next to a model (see ``docs/model_repository.md``). It is
parsed once, strictly, into frozen dataclasses: an unknown key, a missing key, or a value
of the wrong type or range raises :class:`CardError` naming the file and the field.
"""

from __future__ import annotations

import copy
import enum
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from service.errors import InputError
from service.inference.masking import MaskSpec, parse_mask_spec
from service.inference.normalisation import NormalisationSpec, parse_normalisation
from service.inference.spec import SpecError, Where
from service.volume import ALLOWED_UNITS, Modality, Unit

SCHEMA = "radtranslate.card/v1"


class CardError(InputError):
    """A model card is missing, malformed, or inconsistent."""


class Task(enum.StrEnum):
    """What a model translates."""

    MR_TO_CT = "mr-to-ct"
    CBCT_TO_CT = "cbct-to-ct"
    PET_DENOISE = "pet-denoise"

    @classmethod
    def parse(cls, value: Task | str) -> Task:
        """Accept a member or its value (case-insensitive, '_' accepted for '-')."""
        if isinstance(value, Task):
            return value
        text = str(value).strip().lower().replace("_", "-")
        try:
            return cls(text)
        except ValueError:
            allowed = ", ".join(t.value for t in cls)
            raise InputError(f"task must be one of {allowed}, got {value!r}: pass one of these.") from None


class Site(enum.StrEnum):
    """Anatomical site a model was trained for."""

    BRAIN = "brain"
    PELVIS = "pelvis"
    ANY = "any"

    @classmethod
    def parse(cls, value: Site | str) -> Site:
        """Accept a member or its value (case-insensitive)."""
        if isinstance(value, Site):
            return value
        try:
            return cls(str(value).strip().lower())
        except ValueError:
            allowed = ", ".join(s.value for s in cls)
            raise InputError(f"site must be one of {allowed}, got {value!r}: pass one of these.") from None


#: (input modality, output modality) of each task. CBCT is stored with DICOM modality CT.
TASK_MODALITIES: dict[Task, tuple[Modality, Modality]] = {
    Task.MR_TO_CT: (Modality.MR, Modality.CT),
    Task.CBCT_TO_CT: (Modality.CT, Modality.CT),
    Task.PET_DENOISE: (Modality.PT, Modality.PT),
}

_DOC_FIELDS = (
    "title",
    "normalisation_notes",
    "parity",
    "architecture",
    "training_data",
    "training",
    "metrics",
    "intended_use",
    "limitations",
    "references",
)


@dataclass(frozen=True)
class InputSpec:
    """What the model reads: modality, unit, and how values are normalised."""

    modality: Modality
    unit: Unit
    normalisation: NormalisationSpec


@dataclass(frozen=True)
class OutputSpec:
    """What the model writes, in native units after the inverse normalisation.

    ``background`` is written outside the body mask; ``clip_range`` = (lo, hi) bounds the result.
    """

    modality: Modality
    unit: Unit
    normalisation: NormalisationSpec
    background: float
    clip_range: tuple[float, float]


@dataclass(frozen=True)
class TileSpec:
    """Sliding-window inference: square tiles of ``size_px`` overlapping by ``overlap_px``."""

    size_px: int
    overlap_px: int
    blend: str  # "linear" or "cosine"


@dataclass(frozen=True)
class ModelCard:
    """A parsed, validated model card (see ``docs/model_repository.md`` for every field)."""

    name: str
    version: str
    task: Task
    site: Site
    input: InputSpec
    output: OutputSpec
    context_slices: int
    in_plane_spacing_mm: tuple[float, float]  # (x, y)
    size_multiple: int
    tile: TileSpec | None
    dose_reduction_factor: float | None
    body_mask: MaskSpec
    documentation: Mapping[str, Any]
    raw: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """The card as it was written (JSON-ready)."""
        return copy.deepcopy(dict(self.raw))


def _modality_unit(where: Where, obj: Mapping[str, Any]) -> tuple[Modality, Unit]:
    try:
        modality = Modality.parse(where.get(obj, "modality", str))
        unit = Unit.parse(where.get(obj, "unit", str))
    except InputError as exc:
        raise SpecError(f"{where.path}: {exc}") from None
    if unit not in ALLOWED_UNITS[modality]:
        raise SpecError(
            f"{where.path}.unit {unit.value!r} does not suit modality {modality.value}: "
            f"use one of {sorted(u.value for u in ALLOWED_UNITS[modality])}."
        )
    return modality, unit


def _input_spec(where: Where, obj: Mapping[str, Any]) -> InputSpec:
    where.keys(obj, required={"modality", "unit", "normalisation"})
    modality, unit = _modality_unit(where, obj)
    norm = parse_normalisation(where.child("normalisation"), where.get(obj, "normalisation", dict))
    return InputSpec(modality, unit, norm)


def _output_spec(where: Where, obj: Mapping[str, Any]) -> OutputSpec:
    where.keys(obj, required={"modality", "unit", "normalisation", "background", "clip"})
    modality, unit = _modality_unit(where, obj)
    norm = parse_normalisation(where.child("normalisation"), where.get(obj, "normalisation", dict))
    if not norm.invertible_without_statistics:
        raise SpecError(
            f"{where.path}.normalisation.kind {norm.kind.value!r} needs per-volume statistics and "
            "cannot be inverted on a model output: use clip_linear or suv_log."
        )
    background = where.number(obj, "background")
    clip = where.get(obj, "clip", list)
    if len(clip) != 2 or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in clip):
        raise SpecError(f"{where.path}.clip must be [lo, hi] (two numbers), got {clip!r}: fix the card.")
    lo, hi = float(clip[0]), float(clip[1])
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise SpecError(f"{where.path}.clip must be finite with lo < hi, got {clip!r}: fix the card.")
    if not lo <= background <= hi:
        raise SpecError(
            f"{where.path}.background {background} lies outside clip {clip!r}: "
            "choose a background inside the clip range."
        )
    return OutputSpec(modality, unit, norm, background, (lo, hi))


def _tile_spec(where: Where, obj: Mapping[str, Any], size_multiple: int) -> TileSpec:
    where.keys(obj, required={"size_px", "overlap_px"}, optional={"blend"})
    size = where.integer(obj, "size_px", minimum=1)
    overlap = where.integer(obj, "overlap_px", minimum=0)
    blend = str(obj.get("blend", "cosine"))
    if blend not in ("linear", "cosine"):
        raise SpecError(f"{where.path}.blend must be 'linear' or 'cosine', got {blend!r}: fix the card.")
    if size % size_multiple:
        raise SpecError(
            f"{where.path}.size_px {size} is not a multiple of size_multiple {size_multiple}: "
            "choose a tile size the network accepts."
        )
    if overlap >= size:
        raise SpecError(f"{where.path}.overlap_px {overlap} must be < size_px {size}: reduce the overlap.")
    return TileSpec(size, overlap, blend)


def parse_card(data: Any, *, source: str = "<card>") -> ModelCard:
    """Validate a decoded card JSON object into a :class:`ModelCard`.

    Raises
    ------
    CardError
        Naming ``source`` and the field (e.g. ``card.json: output.clip ...``).
    """
    where = Where("card")
    try:
        if not isinstance(data, dict):
            raise SpecError(f"card must be a JSON object, got {type(data).__name__}: fix the card.")
        required = {
            "schema", "name", "version", "task", "site", "input", "output", "context_slices",
            "in_plane_spacing_mm", "size_multiple", "body_mask",
        }  # fmt: skip
        where.keys(data, required=required, optional={"tile", "dose_reduction_factor", *_DOC_FIELDS})
        if data["schema"] != SCHEMA:
            raise SpecError(f"card.schema must be {SCHEMA!r}, got {data['schema']!r}: fix the card.")
        name = where.get(data, "name", str)
        if not name or not all(c.isalnum() or c in "-_." for c in name):
            raise SpecError(f"card.name must be letters, digits, '-', '_' or '.', got {name!r}: rename it.")
        version = where.get(data, "version", str)
        if not version.isdigit() or int(version) < 1:
            raise SpecError(
                f"card.version must be a positive integer in a string (Triton version folder), "
                f'got {version!r}: use e.g. "1".'
            )
        try:
            task = Task.parse(where.get(data, "task", str))
        except InputError as exc:
            raise SpecError(f"card.{exc}") from None
        site_text = where.get(data, "site", str)
        try:
            site = Site(site_text.lower())
        except ValueError:
            raise SpecError(
                f"card.site must be one of {[s.value for s in Site]}, got {site_text!r}: fix the card."
            ) from None
        inp = _input_spec(where.child("input"), where.get(data, "input", dict))
        out = _output_spec(where.child("output"), where.get(data, "output", dict))
        want_in, want_out = TASK_MODALITIES[task]
        if (inp.modality, out.modality) != (want_in, want_out):
            raise SpecError(
                f"card.input/output modalities {inp.modality.value}->{out.modality.value} do not match "
                f"task {task.value} ({want_in.value}->{want_out.value}): fix the task or the modalities."
            )
        context = where.integer(data, "context_slices", minimum=1)
        if context % 2 == 0:
            raise SpecError(f"card.context_slices must be odd, got {context}: use 1, 3, 5, ...")
        spacing = where.get(data, "in_plane_spacing_mm", list)
        if len(spacing) != 2 or not all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v > 0
            for v in spacing
        ):
            raise SpecError(
                f"card.in_plane_spacing_mm must be [x, y], two positive numbers in mm, got {spacing!r}."
            )
        multiple = where.integer(data, "size_multiple", minimum=1)
        tile = None
        if data.get("tile") is not None:
            tile = _tile_spec(where.child("tile"), where.get(data, "tile", dict), multiple)
        drf = data.get("dose_reduction_factor")
        if task is Task.PET_DENOISE:
            drf = where.number(data, "dose_reduction_factor")
            if drf <= 1:
                raise SpecError(f"card.dose_reduction_factor must be > 1 for PET, got {drf}: e.g. 4.")
        elif drf is not None:
            raise SpecError(
                f"card.dose_reduction_factor applies to pet-denoise only, got {drf!r}: remove it."
            )
        mask = parse_mask_spec(where.child("body_mask"), where.get(data, "body_mask", dict), inp.modality)
    except SpecError as exc:
        raise CardError(f"{source}: {exc}") from None
    return ModelCard(
        name=name,
        version=version,
        task=task,
        site=site,
        input=inp,
        output=out,
        context_slices=context,
        in_plane_spacing_mm=(float(spacing[0]), float(spacing[1])),
        size_multiple=multiple,
        tile=tile,
        dose_reduction_factor=None if drf is None else float(drf),
        body_mask=mask,
        documentation=MappingProxyType({k: copy.deepcopy(data[k]) for k in _DOC_FIELDS if k in data}),
        raw=MappingProxyType(copy.deepcopy(data)),
    )


def load_card(path: str | Path) -> ModelCard:
    """Read and validate a ``card.json`` (UTF-8 JSON); errors name the file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CardError(f"{path}: model card not found: add a card.json next to config.pbtxt.") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CardError(f"{path}: cannot read the card as UTF-8 JSON ({exc}): fix the file.") from None
    return parse_card(data, source=str(path))
