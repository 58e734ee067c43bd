"""Python client of ``radtranslate.v1.TranslationService`` (used by ``radtranslate translate --server``)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from protos.radtranslate.v1 import translation_pb2 as pb
from protos.radtranslate.v1 import translation_pb2_grpc as pb_grpc
from service.errors import InputError, OptionError, RadTranslateError
from service.rpc.chunks import DicomAssembler, VolumeAssembler, iter_chunks, volume_bytes
from service.rpc.config import MiB
from service.rpc.remote import typed
from service.rpc.server import SERVICE_NAME, channel_options
from service.rpc.servicer import dicom_chunks, geometry_from_proto, geometry_to_proto
from service.volume import Volume

DEFAULT_CHUNK_BYTES = 1 * MiB
DEFAULT_MAX_MESSAGE_BYTES = 8 * MiB
#: Outputs larger than this are refused by the client (bytes).
DEFAULT_MAX_RESULT_BYTES = 8192 * MiB

ProgressFn = Callable[[str, float], None]
_FORMATS = {
    "dicom": pb.OUTPUT_FORMAT_DICOM,
    "volume": pb.OUTPUT_FORMAT_VOLUME,
    "nifti": pb.OUTPUT_FORMAT_VOLUME,
}


class IncompleteResultError(RadTranslateError):
    """The server's answer is incomplete or inconsistent (a transport or server fault)."""


@dataclass
class ClientResult:
    """A translation's output (``instances`` for DICOM, ``volume`` otherwise) and its summary."""

    model: str
    version: str
    provider: str
    timings_s: dict[str, float]
    output_series_uid: str
    warnings: list[str]
    instances: list[bytes] | None = None
    volume: Volume | None = None
    progress: list[tuple[str, float]] = field(default_factory=list)


class _TokenAuth(grpc.AuthMetadataPlugin):  # type: ignore[misc]
    def __init__(self, token: str) -> None:
        self._metadata = (("authorization", f"Bearer {token}"),)

    def __call__(self, context: Any, callback: Any) -> None:
        callback(self._metadata, None)


def _read(path: str | None) -> bytes | None:
    return None if path is None else Path(path).read_bytes()


class TranslationClient:
    """A channel to a radtranslate server.

    ``ca_file`` enables TLS (the CA that signed the server certificate); ``cert_file`` and
    ``key_file`` add a client certificate (mutual TLS). ``token`` is sent as
    ``authorization: Bearer <token>``; without TLS it goes in cleartext (loopback only!).
    """

    def __init__(
        self,
        target: str,
        *,
        ca_file: str | None = None,
        cert_file: str | None = None,
        key_file: str | None = None,
        token: str | None = None,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        chunk_bytes: int = DEFAULT_CHUNK_BYTES,
        server_name: str | None = None,
    ) -> None:
        if (cert_file is None) != (key_file is None):
            raise OptionError(
                "cert_file and key_file must be given together: pass both for mutual TLS, or neither."
            )
        if chunk_bytes + 64 * 1024 > max_message_bytes:
            raise OptionError(
                f"chunk_bytes={chunk_bytes} does not fit max_message_bytes={max_message_bytes}: "
                "raise max_message_bytes or lower chunk_bytes."
            )
        self.chunk_bytes = chunk_bytes
        options = channel_options(max_message_bytes)
        if server_name:
            options.append(("grpc.ssl_target_name_override", server_name))
        if ca_file is not None or cert_file is not None:
            creds = grpc.ssl_channel_credentials(
                root_certificates=_read(ca_file),
                private_key=_read(key_file),
                certificate_chain=_read(cert_file),
            )
            if token:
                creds = grpc.composite_channel_credentials(
                    creds, grpc.metadata_call_credentials(_TokenAuth(token))
                )
            self._metadata: tuple[tuple[str, str], ...] = ()
            self.channel = grpc.secure_channel(target, creds, options=options)
        else:
            self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
            self.channel = grpc.insecure_channel(target, options=options)
        self.target = target
        self._stub = pb_grpc.TranslationServiceStub(self.channel)
        self._health = health_pb2_grpc.HealthStub(self.channel)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> TranslationClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ simple calls
    def list_models(self, *, timeout_s: float | None = 30.0) -> list[pb.ModelCard]:
        try:
            request = pb.ListModelsRequest()
            response = self._stub.ListModels(request, timeout=timeout_s, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise typed(exc, self.target) from None
        return list(response.models)

    def get_model(
        self, name: str, version: str | None = None, *, timeout_s: float | None = 30.0
    ) -> pb.ModelCard:
        request = pb.GetModelRequest(name=name, version=version or "")
        try:
            card: pb.ModelCard = self._stub.GetModel(request, timeout=timeout_s, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise typed(exc, self.target) from None
        return card

    def health(self, service: str = SERVICE_NAME, *, timeout_s: float = 5.0) -> str:
        """``"SERVING"``, ``"NOT_SERVING"``, ... of the standard health service."""
        try:
            response = self._health.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout_s)
        except grpc.RpcError as exc:
            raise typed(exc, self.target) from None
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(response.status))

    # ------------------------------------------------------------------ translate
    def _header(
        self,
        *,
        task: str | None,
        model: str | None,
        version: str | None,
        output_format: str,
        series_uid: str | None,
        modality: str | None,
        request_id: str,
        site: str | None = None,
    ) -> pb.TranslateRequest:
        if output_format not in _FORMATS:
            raise OptionError(
                f"output_format must be one of {sorted(_FORMATS)}, got {output_format!r}: pick one."
            )
        header = pb.TranslateHeader(
            task=task or "",
            site=site or "",
            model=model or "",
            version=version or "",
            output_format=_FORMATS[output_format],
            series_instance_uid=series_uid or "",
            modality=modality or "",
            request_id=request_id,
        )
        return pb.TranslateRequest(header=header)

    def _dicom_requests(
        self, header: pb.TranslateRequest, blobs: Iterable[bytes]
    ) -> Iterator[pb.TranslateRequest]:
        yield header
        for index, blob in enumerate(blobs):
            for chunk in dicom_chunks(index, blob, self.chunk_bytes):
                yield pb.TranslateRequest(dicom=chunk)

    def _volume_requests(self, header: pb.TranslateRequest, volume: Volume) -> Iterator[pb.TranslateRequest]:
        yield header
        yield pb.TranslateRequest(volume_header=geometry_to_proto(volume))
        for c in iter_chunks(volume_bytes(volume), self.chunk_bytes):
            yield pb.TranslateRequest(volume=pb.VolumeChunk(offset=c.offset, data=bytes(c.data), last=c.last))

    def _run(
        self, requests: Iterator[pb.TranslateRequest], progress: ProgressFn | None, timeout_s: float | None
    ) -> ClientResult:
        dicom = DicomAssembler(max_instances=10**6, max_request_bytes=DEFAULT_MAX_RESULT_BYTES)
        volume: VolumeAssembler | None = None
        events: list[tuple[str, float]] = []
        summary: pb.Summary | None = None
        try:
            for response in self._stub.Translate(requests, timeout=timeout_s, metadata=self._metadata):
                kind = response.WhichOneof("part")
                if kind == "progress":
                    events.append((response.progress.stage, response.progress.fraction))
                    if progress is not None:
                        progress(response.progress.stage, response.progress.fraction)
                elif kind == "dicom":
                    c = response.dicom
                    dicom.add(
                        instance_index=c.instance_index,
                        instance_size_bytes=c.instance_size_bytes,
                        offset=c.offset,
                        data=c.data,
                        last=c.last,
                    )
                elif kind == "volume_header":
                    h = response.volume_header
                    volume = VolumeAssembler(
                        geometry_from_proto(h), h.total_bytes, max_request_bytes=DEFAULT_MAX_RESULT_BYTES
                    )
                elif kind == "volume" and volume is not None:
                    c_vol = response.volume
                    volume.add(offset=c_vol.offset, data=c_vol.data, last=c_vol.last)
                elif kind == "summary":
                    summary = response.summary
        except grpc.RpcError as exc:
            raise typed(exc, self.target) from None
        if summary is None:
            raise IncompleteResultError(
                "the server ended the stream without a summary: retry; report it if it persists."
            )
        instances = dicom.finish() if summary.output_instances else None
        if instances is not None and len(instances) != summary.output_instances:
            raise IncompleteResultError(
                f"received {len(instances)} DICOM instances but the summary announces "
                f"{summary.output_instances}: retry; report it if it persists."
            )
        return ClientResult(
            model=summary.model,
            version=summary.version,
            provider=summary.provider,
            timings_s=dict(summary.timings_s),
            output_series_uid=summary.output_series_instance_uid,
            warnings=list(summary.warnings),
            instances=instances,
            volume=volume.finish() if volume is not None else None,
            progress=events,
        )

    def translate_dicom(
        self,
        paths_or_bytes: Sequence[str | os.PathLike[str] | bytes],
        *,
        task: str | None = None,
        site: str | None = None,
        model: str | None = None,
        version: str | None = None,
        output_format: str = "dicom",
        series_uid: str | None = None,
        modality: str | None = None,
        request_id: str = "",
        progress: ProgressFn | None = None,
        timeout_s: float | None = None,
    ) -> ClientResult:
        """Send DICOM files (paths, or the bytes of Part 10 files); files are read lazily, one at a time."""
        if not paths_or_bytes:
            raise InputError("paths_or_bytes is empty: pass the files of one series.")
        header = self._header(
            task=task,
            site=site,
            model=model,
            version=version,
            output_format=output_format,
            series_uid=series_uid,
            modality=modality,
            request_id=request_id,
        )
        blobs = (p if isinstance(p, bytes) else Path(p).read_bytes() for p in paths_or_bytes)
        return self._run(self._dicom_requests(header, blobs), progress, timeout_s)

    def translate_volume(
        self,
        volume: Volume,
        *,
        task: str | None = None,
        site: str | None = None,
        model: str | None = None,
        version: str | None = None,
        output_format: str = "volume",
        request_id: str = "",
        progress: ProgressFn | None = None,
        timeout_s: float | None = None,
    ) -> ClientResult:
        """Send a volume (float32 with geometry); the result is a volume unless output_format='dicom'."""
        header = self._header(
            task=task,
            site=site,
            model=model,
            version=version,
            output_format=output_format,
            series_uid=None,
            modality=None,
            request_id=request_id,
        )
        return self._run(self._volume_requests(header, volume), progress, timeout_s)


def write_result(result: ClientResult, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Write a result atomically: DICOM instances into folder ``path`` (``0001.dcm``, ...), or a volume
    to the image file ``path`` (NIfTI/MHA/NRRD by suffix). Nothing appears at ``path`` on failure."""
    from service.atomic import atomic_directory

    final = Path(path)
    if result.instances is not None:
        with atomic_directory(final, overwrite=overwrite) as folder:
            width = max(4, len(str(len(result.instances))))
            for index, blob in enumerate(result.instances, start=1):
                (folder / f"{index:0{width}d}.dcm").write_bytes(blob)
        return final
    if result.volume is not None:
        from service.imageio import write_image

        write_image(result.volume, final, overwrite=overwrite)
        return final
    raise InputError("the result holds neither DICOM instances nor a volume: nothing to write.")
