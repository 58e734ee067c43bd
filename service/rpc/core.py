"""The transport-free core of the translation service: decode, translate, encode.

It knows nothing of gRPC: the servicer turns protobuf messages into :class:`TranslateOptions`
and an input (:class:`DicomInput` or a :class:`~service.volume.Volume`), and the
:class:`CoreResult` back into messages. Errors are the typed errors of :mod:`service.errors`.
"""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from service.errors import CancelledError, DicomError, InputError, OptionError
from service.inference.card import Site
from service.logs import hash_uid
from service.volume import Modality, Volume

log = logging.getLogger("radtranslate.rpc.core")

OutputFormat = Literal["dicom", "volume"]
ProgressFn = Callable[[str, float], None]


class NotReadyError(Exception):
    """Models are not loaded yet (the gRPC layer answers UNAVAILABLE: retry shortly)."""


class EngineLike(Protocol):
    """What the core needs of :class:`service.inference.engine.Engine`."""

    @property
    def loaded(self) -> bool: ...

    def list_models(self) -> list[Any]: ...

    def get_model(self, name: str, version: str | None = None) -> Any: ...

    def resolve(
        self,
        *,
        model: str | None = None,
        task: str | None = None,
        site: str | None = None,
        version: str | None = None,
    ) -> Any: ...

    def translate(
        self,
        volume: Volume,
        *,
        model: str | None = None,
        task: str | None = None,
        site: str | None = None,
        version: str | None = None,
        progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
    ) -> Any: ...


@dataclass(frozen=True)
class TranslateOptions:
    """What the caller asked for (validated)."""

    task: str | None = None
    site: str | None = None
    model: str | None = None
    version: str | None = None
    output_format: OutputFormat | None = None  # None: DICOM for DICOM input, volume for volume input
    series_uid: str | None = None
    modality: str | None = None
    request_id: str = ""

    def __post_init__(self) -> None:
        if not self.task and not self.model:
            raise OptionError(
                "header names neither task nor model: set header.task (e.g. mr-to-ct) or header.model."
            )
        if self.modality:
            Modality.parse(self.modality)
        if self.site:
            Site.parse(self.site)
        if len(self.request_id) > 128:
            raise OptionError(f"request_id is {len(self.request_id)} characters long: use at most 128.")


@dataclass(frozen=True)
class DicomInput:
    """DICOM instances, each the bytes of one Part 10 file."""

    instances: Sequence[bytes]


@dataclass
class CoreResult:
    """The output and its summary; exactly one of ``instances`` / ``volume`` is set."""

    model: str
    version: str
    provider: str
    timings_s: dict[str, float]
    instances: list[bytes] | None = None
    volume: Volume | None = None
    output_series_uid: str = ""
    warnings: list[str] = field(default_factory=list)


def _check_cancel(cancel: threading.Event, stage: str) -> None:
    if cancel.is_set():
        raise CancelledError(f"the call was cancelled before {stage}: nothing more was computed.")


def decode_dicom(
    instances: Sequence[bytes],
    *,
    series_uid: str | None,
    modality: str | None,
    cancel: threading.Event | None = None,
) -> Volume:
    """Parse Part 10 bytes and read one series into a :class:`Volume`."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    from service.dicom.reader import read_series_from_datasets

    datasets = []
    for index, blob in enumerate(instances):
        if cancel is not None:
            _check_cancel(cancel, "decoding all instances")
        try:
            datasets.append(pydicom.dcmread(io.BytesIO(blob)))
        except (InvalidDicomError, EOFError, ValueError, TypeError, KeyError, AttributeError) as exc:
            raise DicomError(
                f"instance {index} ({len(blob)} bytes) is not a readable DICOM Part 10 file "
                f"({type(exc).__name__}): send DICOM files with the 128-byte preamble and 'DICM' prefix."
            ) from None
    return read_series_from_datasets(
        datasets,
        series_uid=series_uid or None,
        modality=Modality.parse(modality) if modality else None,
    )


def encode_dicom(
    volume: Volume, *, model_name: str, model_version: str, cancel: threading.Event | None = None
) -> tuple[list[bytes], str]:
    """Encode a derived series; returns the Part 10 bytes of each instance and the series UID."""
    from service.dicom.part10 import encode_part10
    from service.dicom.writer import encode_derived_series

    datasets = encode_derived_series(volume, model_name=model_name, model_version=model_version)
    if cancel is not None:
        _check_cancel(cancel, "serialising the instances")
    blobs = encode_part10(datasets)
    series_uid = str(datasets[0].SeriesInstanceUID) if datasets else ""
    return blobs, series_uid


class TranslationCore:
    """Decode -> translate -> encode, with progress, cancellation and per-stage timings."""

    def __init__(self, engine: EngineLike) -> None:
        self.engine = engine

    def _require_loaded(self) -> None:
        if not self.engine.loaded:
            raise NotReadyError("models are still loading: retry in a few seconds.")

    def list_models(self) -> list[Any]:
        self._require_loaded()
        return self.engine.list_models()

    def get_model(self, name: str, version: str | None = None) -> Any:
        self._require_loaded()
        if not name:
            raise OptionError("name is empty: pass the model name (see ListModels).")
        return self.engine.get_model(name, version or None)

    def translate(
        self,
        options: TranslateOptions,
        payload: DicomInput | Volume,
        *,
        progress: ProgressFn,
        cancel: threading.Event,
    ) -> CoreResult:
        """Run one translation; raises typed errors, :class:`CancelledError` when ``cancel`` is set."""
        self._require_loaded()
        # an unknown model, or a task (and site) that no single model serves, fails before any decoding
        card = self.engine.resolve(
            model=options.model or None,
            task=None if options.model else options.task,
            site=options.site or None,
            version=options.version or None,
        )
        timings: dict[str, float] = {}
        is_dicom = isinstance(payload, DicomInput)
        fmt: OutputFormat = options.output_format or ("dicom" if is_dicom else "volume")

        _check_cancel(cancel, "decode")
        start = time.perf_counter()
        if isinstance(payload, DicomInput):
            progress("decode", 0.0)
            volume = decode_dicom(
                payload.instances, series_uid=options.series_uid, modality=options.modality, cancel=cancel
            )
            progress("decode", 1.0)
        else:
            volume = payload
            if options.modality and Modality.parse(options.modality) != volume.modality:
                raise InputError(
                    f"header.modality {options.modality!r} differs from the volume's modality "
                    f"{volume.modality.value}: send the volume the model expects, or fix header.modality."
                )
        timings["decode"] = time.perf_counter() - start
        source_uid = volume.source.series_instance_uid if volume.source is not None else None
        log.info(
            "decoded input",
            extra={
                "fields": {
                    "request_id": options.request_id,
                    "series": hash_uid(source_uid),
                    "shape_zyx": list(volume.shape),
                    "modality": volume.modality.value,
                }
            },
        )

        _check_cancel(cancel, "inference")
        start = time.perf_counter()
        result = self.engine.translate(
            volume,
            model=str(card.name),
            version=str(card.version),
            progress=progress,
            cancel=cancel,
        )
        timings["inference"] = time.perf_counter() - start
        for stage, seconds in dict(getattr(result, "timings_s", {}) or {}).items():
            timings[f"inference.{stage}"] = float(seconds)
        out_volume: Volume = result.volume
        core = CoreResult(
            model=str(result.model),
            version=str(result.version),
            provider=str(result.provider),
            timings_s=timings,
        )
        core.warnings.extend(str(w) for w in getattr(result, "warnings", ()) or ())

        _check_cancel(cancel, "encode")
        start = time.perf_counter()
        if fmt == "dicom":
            progress("encode", 0.0)
            core.instances, core.output_series_uid = encode_dicom(
                out_volume, model_name=core.model, model_version=core.version, cancel=cancel
            )
            progress("encode", 1.0)
        else:
            core.volume = out_volume
        timings["encode"] = time.perf_counter() - start
        return core
