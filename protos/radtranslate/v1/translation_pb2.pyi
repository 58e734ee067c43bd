from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class OutputFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OUTPUT_FORMAT_UNSPECIFIED: _ClassVar[OutputFormat]
    OUTPUT_FORMAT_DICOM: _ClassVar[OutputFormat]
    OUTPUT_FORMAT_VOLUME: _ClassVar[OutputFormat]
OUTPUT_FORMAT_UNSPECIFIED: OutputFormat
OUTPUT_FORMAT_DICOM: OutputFormat
OUTPUT_FORMAT_VOLUME: OutputFormat

class TranslateHeader(_message.Message):
    __slots__ = ("task", "model", "version", "output_format", "series_instance_uid", "modality", "request_id", "site")
    TASK_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FORMAT_FIELD_NUMBER: _ClassVar[int]
    SERIES_INSTANCE_UID_FIELD_NUMBER: _ClassVar[int]
    MODALITY_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    SITE_FIELD_NUMBER: _ClassVar[int]
    task: str
    model: str
    version: str
    output_format: OutputFormat
    series_instance_uid: str
    modality: str
    request_id: str
    site: str
    def __init__(self, task: _Optional[str] = ..., model: _Optional[str] = ..., version: _Optional[str] = ..., output_format: _Optional[_Union[OutputFormat, str]] = ..., series_instance_uid: _Optional[str] = ..., modality: _Optional[str] = ..., request_id: _Optional[str] = ..., site: _Optional[str] = ...) -> None: ...

class DicomChunk(_message.Message):
    __slots__ = ("instance_index", "instance_size_bytes", "offset", "data", "last")
    INSTANCE_INDEX_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    instance_index: int
    instance_size_bytes: int
    offset: int
    data: bytes
    last: bool
    def __init__(self, instance_index: _Optional[int] = ..., instance_size_bytes: _Optional[int] = ..., offset: _Optional[int] = ..., data: _Optional[bytes] = ..., last: _Optional[bool] = ...) -> None: ...

class VolumeHeader(_message.Message):
    __slots__ = ("shape_zyx", "spacing_mm", "origin_mm", "direction", "modality", "unit", "total_bytes")
    SHAPE_ZYX_FIELD_NUMBER: _ClassVar[int]
    SPACING_MM_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_MM_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    MODALITY_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    shape_zyx: _containers.RepeatedScalarFieldContainer[int]
    spacing_mm: _containers.RepeatedScalarFieldContainer[float]
    origin_mm: _containers.RepeatedScalarFieldContainer[float]
    direction: _containers.RepeatedScalarFieldContainer[float]
    modality: str
    unit: str
    total_bytes: int
    def __init__(self, shape_zyx: _Optional[_Iterable[int]] = ..., spacing_mm: _Optional[_Iterable[float]] = ..., origin_mm: _Optional[_Iterable[float]] = ..., direction: _Optional[_Iterable[float]] = ..., modality: _Optional[str] = ..., unit: _Optional[str] = ..., total_bytes: _Optional[int] = ...) -> None: ...

class VolumeChunk(_message.Message):
    __slots__ = ("offset", "data", "last")
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    offset: int
    data: bytes
    last: bool
    def __init__(self, offset: _Optional[int] = ..., data: _Optional[bytes] = ..., last: _Optional[bool] = ...) -> None: ...

class TranslateRequest(_message.Message):
    __slots__ = ("header", "dicom", "volume_header", "volume")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    DICOM_FIELD_NUMBER: _ClassVar[int]
    VOLUME_HEADER_FIELD_NUMBER: _ClassVar[int]
    VOLUME_FIELD_NUMBER: _ClassVar[int]
    header: TranslateHeader
    dicom: DicomChunk
    volume_header: VolumeHeader
    volume: VolumeChunk
    def __init__(self, header: _Optional[_Union[TranslateHeader, _Mapping]] = ..., dicom: _Optional[_Union[DicomChunk, _Mapping]] = ..., volume_header: _Optional[_Union[VolumeHeader, _Mapping]] = ..., volume: _Optional[_Union[VolumeChunk, _Mapping]] = ...) -> None: ...

class Progress(_message.Message):
    __slots__ = ("stage", "fraction")
    STAGE_FIELD_NUMBER: _ClassVar[int]
    FRACTION_FIELD_NUMBER: _ClassVar[int]
    stage: str
    fraction: float
    def __init__(self, stage: _Optional[str] = ..., fraction: _Optional[float] = ...) -> None: ...

class Summary(_message.Message):
    __slots__ = ("model", "version", "provider", "timings_s", "output_series_instance_uid", "warnings", "output_instances", "request_id")
    class TimingsSEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_S_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_SERIES_INSTANCE_UID_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_INSTANCES_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    model: str
    version: str
    provider: str
    timings_s: _containers.ScalarMap[str, float]
    output_series_instance_uid: str
    warnings: _containers.RepeatedScalarFieldContainer[str]
    output_instances: int
    request_id: str
    def __init__(self, model: _Optional[str] = ..., version: _Optional[str] = ..., provider: _Optional[str] = ..., timings_s: _Optional[_Mapping[str, float]] = ..., output_series_instance_uid: _Optional[str] = ..., warnings: _Optional[_Iterable[str]] = ..., output_instances: _Optional[int] = ..., request_id: _Optional[str] = ...) -> None: ...

class TranslateResponse(_message.Message):
    __slots__ = ("progress", "dicom", "volume_header", "volume", "summary")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    DICOM_FIELD_NUMBER: _ClassVar[int]
    VOLUME_HEADER_FIELD_NUMBER: _ClassVar[int]
    VOLUME_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    progress: Progress
    dicom: DicomChunk
    volume_header: VolumeHeader
    volume: VolumeChunk
    summary: Summary
    def __init__(self, progress: _Optional[_Union[Progress, _Mapping]] = ..., dicom: _Optional[_Union[DicomChunk, _Mapping]] = ..., volume_header: _Optional[_Union[VolumeHeader, _Mapping]] = ..., volume: _Optional[_Union[VolumeChunk, _Mapping]] = ..., summary: _Optional[_Union[Summary, _Mapping]] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ModelCard(_message.Message):
    __slots__ = ("name", "version", "task", "input_modality", "output_modality", "input_unit", "output_unit", "description", "card_json", "provider", "site")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    INPUT_MODALITY_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_MODALITY_FIELD_NUMBER: _ClassVar[int]
    INPUT_UNIT_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_UNIT_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CARD_JSON_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    SITE_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    task: str
    input_modality: str
    output_modality: str
    input_unit: str
    output_unit: str
    description: str
    card_json: str
    provider: str
    site: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., task: _Optional[str] = ..., input_modality: _Optional[str] = ..., output_modality: _Optional[str] = ..., input_unit: _Optional[str] = ..., output_unit: _Optional[str] = ..., description: _Optional[str] = ..., card_json: _Optional[str] = ..., provider: _Optional[str] = ..., site: _Optional[str] = ...) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models",)
    MODELS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ModelCard]
    def __init__(self, models: _Optional[_Iterable[_Union[ModelCard, _Mapping]]] = ...) -> None: ...

class GetModelRequest(_message.Message):
    __slots__ = ("name", "version")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ...) -> None: ...
