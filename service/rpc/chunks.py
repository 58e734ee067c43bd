"""Chunk framing, transport-free: split payloads into chunks and reassemble them with limits.

Input limits are checked as chunks arrive, so a request beyond ``max_request_bytes`` or
``max_instances`` is refused before it is buffered. Both limits answer
:class:`RequestTooLargeError` (an :class:`~service.errors.InputError`, i.e. INVALID_ARGUMENT):
the same request would fail again, so it is not the retryable RESOURCE_EXHAUSTED.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from service.errors import InputError
from service.rpc.config import MAX_CHUNK_BYTES
from service.volume import Volume


class RequestTooLargeError(InputError):
    """A request holds more bytes or instances than the server accepts."""


class FramingError(InputError):
    """Chunks arrive out of order, overlap, or leave a payload incomplete."""


@dataclass(frozen=True)
class Chunk:
    """One piece of a payload: ``data`` starts at byte ``offset``; ``last`` ends the payload."""

    offset: int
    data: memoryview
    last: bool


def iter_chunks(payload: bytes | bytearray | memoryview, chunk_bytes: int) -> Iterator[Chunk]:
    """Split ``payload`` into chunks of at most ``chunk_bytes`` (an empty payload gives one empty chunk)."""
    if not 0 < chunk_bytes <= MAX_CHUNK_BYTES:
        raise InputError(
            f"chunk_bytes must be within 1..{MAX_CHUNK_BYTES}, got {chunk_bytes}: pass e.g. 1048576."
        )
    view = memoryview(payload).cast("B")
    total = len(view)
    if total == 0:
        yield Chunk(0, view, True)
        return
    for start in range(0, total, chunk_bytes):
        end = min(start + chunk_bytes, total)
        yield Chunk(start, view[start:end], end == total)


class DicomAssembler:
    """Reassemble DICOM instances from chunks (index, total size, offset, last flag)."""

    def __init__(self, *, max_instances: int, max_request_bytes: int) -> None:
        self._max_instances = max_instances
        self._max_bytes = max_request_bytes
        self._done: list[bytes] = []
        self._current: bytearray | None = None
        self._received = 0
        self._total_bytes = 0

    @property
    def total_bytes(self) -> int:
        return self._total_bytes

    def add(
        self, *, instance_index: int, instance_size_bytes: int, offset: int, data: bytes, last: bool
    ) -> None:
        """Take one chunk; raise :class:`FramingError` or :class:`RequestTooLargeError` when wrong."""
        if len(data) > MAX_CHUNK_BYTES:
            raise FramingError(
                f"a DICOM chunk holds {len(data)} bytes, more than the {MAX_CHUNK_BYTES} allowed: "
                "send chunks of at most 4 MiB."
            )
        if self._current is None:
            expected = len(self._done)
            if instance_index != expected:
                raise FramingError(
                    f"DICOM chunk for instance_index {instance_index} arrived when instance {expected} "
                    "was expected: send instances in order 0, 1, 2, ... each completed (last=true) first."
                )
            if expected >= self._max_instances:
                raise RequestTooLargeError(
                    f"the request holds more than {self._max_instances} DICOM instances "
                    f"(max_instances): send one series at a time, or raise the server's max_instances."
                )
            if instance_size_bytes <= 0:
                raise FramingError(
                    f"instance {instance_index} has instance_size_bytes={instance_size_bytes}: "
                    "give each instance's total size in bytes."
                )
            if self._total_bytes + instance_size_bytes > self._max_bytes:
                raise RequestTooLargeError(
                    f"the request's input exceeds max_request_bytes={self._max_bytes} "
                    f"(at instance {instance_index}): send fewer instances, or raise the server's limit."
                )
            self._current = bytearray(instance_size_bytes)
            self._received = 0
            self._total_bytes += instance_size_bytes
        current = self._current
        if instance_index != len(self._done) or instance_size_bytes != len(current):
            raise FramingError(
                f"chunk (instance_index={instance_index}, instance_size_bytes={instance_size_bytes}) does "
                f"not continue instance {len(self._done)} of {len(current)} bytes: finish one instance "
                "before starting the next."
            )
        if offset != self._received:
            raise FramingError(
                f"instance {instance_index}: chunk offset {offset} where {self._received} was expected: "
                "send each instance's chunks in order, without gaps or overlaps."
            )
        end = offset + len(data)
        if end > len(current):
            raise FramingError(
                f"instance {instance_index}: chunks reach byte {end}, beyond its declared size "
                f"{len(current)}: declare the true instance_size_bytes."
            )
        current[offset:end] = data
        self._received = end
        if last:
            if end != len(current):
                raise FramingError(
                    f"instance {instance_index}: last chunk ends at byte {end} of {len(current)}: "
                    "send the whole instance before last=true."
                )
            self._done.append(bytes(current))
            self._current = None

    def finish(self) -> list[bytes]:
        """The complete instances; refuses an unfinished instance or an empty request."""
        if self._current is not None:
            raise FramingError(
                f"the stream ended inside instance {len(self._done)} ({self._received} of "
                f"{len(self._current)} bytes): send all chunks, the final one with last=true."
            )
        if not self._done:
            raise InputError("the request holds no DICOM instances: send the series after the header.")
        return self._done


@dataclass(frozen=True)
class VolumeGeometry:
    """A volume's description, as carried by ``VolumeHeader``."""

    shape_zyx: tuple[int, ...]
    spacing_mm: tuple[float, ...]
    origin_mm: tuple[float, ...]
    direction: tuple[float, ...]  # row-major 3x3
    modality: str
    unit: str

    @property
    def total_bytes(self) -> int:
        return int(np.prod(self.shape_zyx, dtype=np.int64)) * 4

    @classmethod
    def of(cls, volume: Volume) -> VolumeGeometry:
        return cls(
            volume.shape,
            volume.spacing_mm,
            volume.origin_mm,
            tuple(float(v) for v in volume.direction.ravel()),
            volume.modality.value,
            volume.unit.value,
        )


class VolumeAssembler:
    """Reassemble a float32 little-endian volume from contiguous chunks."""

    def __init__(self, geometry: VolumeGeometry, declared_bytes: int, *, max_request_bytes: int) -> None:
        if len(geometry.shape_zyx) != 3 or min(geometry.shape_zyx) < 1:
            raise InputError(
                f"volume_header.shape_zyx must be 3 positive sizes, got {list(geometry.shape_zyx)}: "
                "send (slices, rows, columns)."
            )
        for name, values, size in (
            ("spacing_mm", geometry.spacing_mm, 3),
            ("origin_mm", geometry.origin_mm, 3),
            ("direction", geometry.direction, 9),
        ):
            if len(values) != size:
                raise InputError(f"volume_header.{name} must hold {size} numbers, got {len(values)}: fix it.")
        total = geometry.total_bytes
        if declared_bytes != total:
            raise FramingError(
                f"volume_header.total_bytes={declared_bytes} but shape {list(geometry.shape_zyx)} of float32 "
                f"needs {total}: send shape product x 4."
            )
        if total > max_request_bytes:
            raise RequestTooLargeError(
                f"the volume holds {total} bytes, more than max_request_bytes={max_request_bytes}: "
                "crop or downsample it, or raise the server's limit."
            )
        self._geometry = geometry
        self._buffer = bytearray(total)
        self._received = 0
        self._finished = False

    @property
    def total_bytes(self) -> int:
        return len(self._buffer)

    def add(self, *, offset: int, data: bytes, last: bool) -> None:
        if self._finished:
            raise FramingError(
                "a volume chunk arrived after last=true: send last=true on the final chunk only."
            )
        if len(data) > MAX_CHUNK_BYTES:
            raise FramingError(f"a volume chunk holds {len(data)} bytes (> 4 MiB): send smaller chunks.")
        if offset != self._received:
            raise FramingError(
                f"volume chunk offset {offset} where {self._received} was expected: send chunks in order."
            )
        end = offset + len(data)
        if end > len(self._buffer):
            raise FramingError(
                f"volume chunks reach byte {end}, beyond total_bytes {len(self._buffer)}: fix the header."
            )
        self._buffer[offset:end] = data
        self._received = end
        if last:
            if end != len(self._buffer):
                raise FramingError(
                    f"volume ends at byte {end} of {len(self._buffer)}: send all voxels before last=true."
                )
            self._finished = True

    def finish(self) -> Volume:
        if not self._finished:
            raise FramingError(
                f"the stream ended after {self._received} of {len(self._buffer)} volume bytes: "
                "send all chunks, the final one with last=true."
            )
        g = self._geometry
        array = np.frombuffer(self._buffer, dtype="<f4").reshape(g.shape_zyx)
        return Volume(
            array=array,
            spacing_mm=g.spacing_mm,  # type: ignore[arg-type]
            origin_mm=g.origin_mm,  # type: ignore[arg-type]
            direction=np.asarray(g.direction, dtype=np.float64).reshape(3, 3),
            modality=g.modality,  # type: ignore[arg-type]
            unit=g.unit,  # type: ignore[arg-type]
        )


def volume_bytes(volume: Volume) -> memoryview:
    """The voxels as float32 little-endian bytes in C order (no copy on little-endian hosts)."""
    array = np.ascontiguousarray(volume.array, dtype="<f4")
    return array.data.cast("B")
