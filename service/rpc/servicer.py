"""gRPC servicer: translates protobuf messages to the transport-free core and back.

It raises the typed errors of :mod:`service.errors`; :mod:`service.rpc.interceptors` turns
them into status codes. Work runs on a worker thread so progress events stream while it runs.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import grpc

from protos.radtranslate.v1 import translation_pb2 as pb
from protos.radtranslate.v1 import translation_pb2_grpc as pb_grpc
from service.errors import CancelledError, InputError
from service.rpc.admission import Admission
from service.rpc.chunks import DicomAssembler, VolumeAssembler, VolumeGeometry, iter_chunks, volume_bytes
from service.rpc.config import ServerConfig
from service.rpc.core import CoreResult, DicomInput, OutputFormat, TranslateOptions, TranslationCore
from service.rpc.metrics import Metrics
from service.volume import Volume

log = logging.getLogger("radtranslate.rpc.servicer")

#: How often the streaming loop checks that the client is still there (s).
POLL_S = 0.1

_FORMATS: dict[int, OutputFormat | None] = {
    pb.OUTPUT_FORMAT_UNSPECIFIED: None,
    pb.OUTPUT_FORMAT_DICOM: "dicom",
    pb.OUTPUT_FORMAT_VOLUME: "volume",
}


def options_from_header(header: pb.TranslateHeader) -> TranslateOptions:
    """Validated options from the header message."""
    if header.output_format not in _FORMATS:
        raise InputError(
            f"header.output_format {header.output_format} is unknown: "
            "use OUTPUT_FORMAT_DICOM or OUTPUT_FORMAT_VOLUME."
        )
    return TranslateOptions(
        task=header.task.strip() or None,
        site=header.site.strip() or None,
        model=header.model.strip() or None,
        version=header.version.strip() or None,
        output_format=_FORMATS[header.output_format],
        series_uid=header.series_instance_uid.strip() or None,
        modality=header.modality.strip() or None,
        request_id=header.request_id,
    )


def geometry_from_proto(h: pb.VolumeHeader) -> VolumeGeometry:
    return VolumeGeometry(
        tuple(h.shape_zyx), tuple(h.spacing_mm), tuple(h.origin_mm), tuple(h.direction), h.modality, h.unit
    )


def dicom_chunks(index: int, blob: bytes, chunk_bytes: int) -> Iterator[pb.DicomChunk]:
    """Instance ``index`` (Part 10 bytes) as DicomChunk messages of at most ``chunk_bytes``."""
    for c in iter_chunks(blob, chunk_bytes):
        yield pb.DicomChunk(
            instance_index=index,
            instance_size_bytes=len(blob),
            offset=c.offset,
            data=bytes(c.data),
            last=c.last,
        )


def geometry_to_proto(volume: Volume) -> pb.VolumeHeader:
    g = VolumeGeometry.of(volume)
    return pb.VolumeHeader(
        shape_zyx=g.shape_zyx,
        spacing_mm=g.spacing_mm,
        origin_mm=g.origin_mm,
        direction=g.direction,
        modality=g.modality,
        unit=g.unit,
        total_bytes=g.total_bytes,
    )


def card_to_proto(card: Any, provider: str = "") -> pb.ModelCard:
    """A :class:`service.inference.card.ModelCard` as a protobuf message."""
    doc = dict(getattr(card, "documentation", {}) or {})
    raw = card.to_dict() if hasattr(card, "to_dict") else {}
    return pb.ModelCard(
        name=str(card.name),
        version=str(card.version),
        task=str(getattr(card.task, "value", card.task)),
        site=str(getattr(card.site, "value", card.site)),
        input_modality=card.input.modality.value,
        output_modality=card.output.modality.value,
        input_unit=card.input.unit.value,
        output_unit=card.output.unit.value,
        description=str(doc.get("intended_use", "")),
        card_json=json.dumps(raw, sort_keys=True),
        provider=provider,
    )


class TranslationServicer(pb_grpc.TranslationServiceServicer):
    """The ``radtranslate.v1.TranslationService`` implementation."""

    def __init__(
        self, core: TranslationCore, config: ServerConfig, admission: Admission, metrics: Metrics
    ) -> None:
        self._core = core
        self._config = config
        self._admission = admission
        self._metrics = metrics
        # workers + queue threads: queued calls wait on the admission semaphore, where cancel is polled.
        self._executor = ThreadPoolExecutor(
            config.workers + config.queue or 1, thread_name_prefix="translate"
        )

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    # ------------------------------------------------------------------ cards
    def _provider(self, card: Any) -> str:
        provider = getattr(self._core.engine, "provider", None)
        if provider is None:
            return ""
        try:
            return str(provider(card.name, card.version))
        except Exception:  # a card listed but not loaded has no provider; the card is still useful
            return ""

    def ListModels(
        self, request: pb.ListModelsRequest, context: grpc.ServicerContext
    ) -> pb.ListModelsResponse:
        cards = self._core.list_models()
        return pb.ListModelsResponse(models=[card_to_proto(c, self._provider(c)) for c in cards])

    def GetModel(self, request: pb.GetModelRequest, context: grpc.ServicerContext) -> pb.ModelCard:
        card = self._core.get_model(request.name.strip(), request.version.strip() or None)
        return card_to_proto(card, self._provider(card))

    # ------------------------------------------------------------------ translate
    def _receive(
        self, requests: Iterator[pb.TranslateRequest], cancel: threading.Event
    ) -> tuple[TranslateOptions, DicomInput | Volume, int]:
        first = next(requests, None)
        if first is None or first.WhichOneof("part") != "header":
            got = "nothing" if first is None else first.WhichOneof("part")
            raise InputError(
                f"the first message of Translate must be a header, got {got}: send "
                "TranslateRequest(header=TranslateHeader(task=... or model=...)) first."
            )
        options = options_from_header(first.header)
        cfg = self._config
        dicom: DicomAssembler | None = None
        volume: VolumeAssembler | None = None
        for message in requests:
            if cancel.is_set():
                raise CancelledError("the call was cancelled while its input was being received.")
            kind = message.WhichOneof("part")
            if kind == "dicom" and volume is None:
                if dicom is None:
                    dicom = DicomAssembler(
                        max_instances=cfg.max_instances, max_request_bytes=cfg.max_request_bytes
                    )
                c = message.dicom
                dicom.add(
                    instance_index=c.instance_index,
                    instance_size_bytes=c.instance_size_bytes,
                    offset=c.offset,
                    data=c.data,
                    last=c.last,
                )
            elif kind == "volume_header" and volume is None and dicom is None:
                h = message.volume_header
                volume = VolumeAssembler(
                    geometry_from_proto(h), h.total_bytes, max_request_bytes=cfg.max_request_bytes
                )
            elif kind == "volume" and volume is not None:
                c = message.volume
                volume.add(offset=c.offset, data=c.data, last=c.last)
            else:
                raise InputError(
                    f"unexpected {kind or 'empty'} message in the input: send one header, then either DICOM "
                    "chunks or one volume_header followed by volume chunks, never both."
                )
        if dicom is not None:
            return options, DicomInput(dicom.finish()), dicom.total_bytes
        if volume is not None:
            return options, volume.finish(), volume.total_bytes
        raise InputError("the stream ended after the header: send DICOM chunks or a volume after it.")

    def Translate(
        self, request_iterator: Iterator[pb.TranslateRequest], context: grpc.ServicerContext
    ) -> Iterator[pb.TranslateResponse]:
        with self._admission.admit():
            cancel = threading.Event()
            context.add_callback(cancel.set)  # runs when the call ends: cancelled, deadline, or done
            start = time.perf_counter()
            options, payload, nbytes = self._receive(iter(request_iterator), cancel)
            self._metrics.bytes_in.inc(nbytes)
            received = time.perf_counter()
            events: queue.Queue[tuple[str, float]] = queue.Queue()
            yield pb.TranslateResponse(progress=pb.Progress(stage="queued", fraction=0.0))

            def work() -> tuple[float, CoreResult]:
                queued = time.perf_counter()
                with self._admission.worker(cancel):
                    waited = time.perf_counter() - queued
                    events.put(("queued", 1.0))
                    return waited, self._core.translate(
                        options, payload, progress=lambda s, f: events.put((s, float(f))), cancel=cancel
                    )

            future: Future[tuple[float, CoreResult]] = self._executor.submit(work)
            while True:
                try:
                    stage, fraction = events.get(timeout=POLL_S)
                except queue.Empty:
                    if future.done() and events.empty():
                        break
                    if not context.is_active():
                        cancel.set()
                    continue
                yield pb.TranslateResponse(progress=pb.Progress(stage=stage, fraction=fraction))
            waited, result = future.result()  # re-raises the worker's typed error
            result.timings_s["receive"] = received - start
            result.timings_s["queue"] = waited
            send_start = time.perf_counter()
            sent = yield from self._send(result)
            result.timings_s["send"] = time.perf_counter() - send_start
            self._metrics.bytes_out.inc(sent)
            for stage_name, seconds in result.timings_s.items():
                if "." not in stage_name:
                    self._metrics.stage.labels(stage_name).observe(seconds)
            self._metrics.inferences.labels(result.model, result.version, result.provider).inc()
            log.info(
                "translated",
                extra={
                    "fields": {
                        "request_id": options.request_id,
                        "model": result.model,
                        "version": result.version,
                        "provider": result.provider,
                        "bytes_in": nbytes,
                        "bytes_out": sent,
                        "timings_s": {k: round(v, 4) for k, v in result.timings_s.items()},
                    }
                },
            )
            yield pb.TranslateResponse(
                summary=pb.Summary(
                    model=result.model,
                    version=result.version,
                    provider=result.provider,
                    timings_s=result.timings_s,
                    output_series_instance_uid=result.output_series_uid,
                    warnings=result.warnings,
                    output_instances=len(result.instances or ()),
                    request_id=options.request_id,
                )
            )

    def _send(self, result: CoreResult) -> Generator[pb.TranslateResponse, None, int]:
        """Stream the output in chunks; returns the bytes sent (generator return value)."""
        chunk_bytes = self._config.chunk_bytes
        sent = 0
        if result.instances is not None:
            total = len(result.instances)
            for index, blob in enumerate(result.instances):
                for chunk in dicom_chunks(index, blob, chunk_bytes):
                    yield pb.TranslateResponse(dicom=chunk)
                sent += len(blob)
                if index % 16 == 15 or index == total - 1:
                    yield pb.TranslateResponse(
                        progress=pb.Progress(stage="send", fraction=(index + 1) / total)
                    )
        elif result.volume is not None:
            yield pb.TranslateResponse(volume_header=geometry_to_proto(result.volume))
            for c in iter_chunks(volume_bytes(result.volume), chunk_bytes):
                yield pb.TranslateResponse(
                    volume=pb.VolumeChunk(offset=c.offset, data=bytes(c.data), last=c.last)
                )
                sent += len(c.data)
        return sent
