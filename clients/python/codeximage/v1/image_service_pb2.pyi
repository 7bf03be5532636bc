import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.longrunning import operations_pb2 as _operations_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AlphaSource(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ALPHA_SOURCE_UNSPECIFIED: _ClassVar[AlphaSource]
    ALPHA_SOURCE_IMAGE_MODEL: _ClassVar[AlphaSource]
    ALPHA_SOURCE_KEYED_MATTE: _ClassVar[AlphaSource]
ALPHA_SOURCE_UNSPECIFIED: AlphaSource
ALPHA_SOURCE_IMAGE_MODEL: AlphaSource
ALPHA_SOURCE_KEYED_MATTE: AlphaSource

class GenerateRequest(_message.Message):
    __slots__ = ("prompt", "count", "size", "aspect", "quality", "output_format", "references", "request_id", "background", "output_compression", "canvas_size", "fit", "webhook_url")
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    ASPECT_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FORMAT_FIELD_NUMBER: _ClassVar[int]
    REFERENCES_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    BACKGROUND_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_COMPRESSION_FIELD_NUMBER: _ClassVar[int]
    CANVAS_SIZE_FIELD_NUMBER: _ClassVar[int]
    FIT_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_URL_FIELD_NUMBER: _ClassVar[int]
    prompt: str
    count: int
    size: str
    aspect: str
    quality: str
    output_format: str
    references: _containers.RepeatedCompositeFieldContainer[Reference]
    request_id: str
    background: str
    output_compression: int
    canvas_size: CanvasSize
    fit: str
    webhook_url: str
    def __init__(self, prompt: _Optional[str] = ..., count: _Optional[int] = ..., size: _Optional[str] = ..., aspect: _Optional[str] = ..., quality: _Optional[str] = ..., output_format: _Optional[str] = ..., references: _Optional[_Iterable[_Union[Reference, _Mapping]]] = ..., request_id: _Optional[str] = ..., background: _Optional[str] = ..., output_compression: _Optional[int] = ..., canvas_size: _Optional[_Union[CanvasSize, _Mapping]] = ..., fit: _Optional[str] = ..., webhook_url: _Optional[str] = ...) -> None: ...

class GenerationResult(_message.Message):
    __slots__ = ("images", "summary")
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    images: _containers.RepeatedCompositeFieldContainer[Image]
    summary: GenerateSummary
    def __init__(self, images: _Optional[_Iterable[_Union[Image, _Mapping]]] = ..., summary: _Optional[_Union[GenerateSummary, _Mapping]] = ...) -> None: ...

class GenerationMetadata(_message.Message):
    __slots__ = ("state", "request_id", "queue_position", "attempts", "candidates", "create_time", "start_time", "end_time", "key_name", "webhook")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[GenerationMetadata.State]
        STATE_QUEUED: _ClassVar[GenerationMetadata.State]
        STATE_RUNNING: _ClassVar[GenerationMetadata.State]
        STATE_SUCCEEDED: _ClassVar[GenerationMetadata.State]
        STATE_FAILED: _ClassVar[GenerationMetadata.State]
        STATE_CANCELLED: _ClassVar[GenerationMetadata.State]
    STATE_UNSPECIFIED: GenerationMetadata.State
    STATE_QUEUED: GenerationMetadata.State
    STATE_RUNNING: GenerationMetadata.State
    STATE_SUCCEEDED: GenerationMetadata.State
    STATE_FAILED: GenerationMetadata.State
    STATE_CANCELLED: GenerationMetadata.State
    STATE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    QUEUE_POSITION_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    KEY_NAME_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_FIELD_NUMBER: _ClassVar[int]
    state: GenerationMetadata.State
    request_id: str
    queue_position: int
    attempts: int
    candidates: _containers.RepeatedCompositeFieldContainer[CandidateProgress]
    create_time: _timestamp_pb2.Timestamp
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    key_name: str
    webhook: WebhookDelivery
    def __init__(self, state: _Optional[_Union[GenerationMetadata.State, str]] = ..., request_id: _Optional[str] = ..., queue_position: _Optional[int] = ..., attempts: _Optional[int] = ..., candidates: _Optional[_Iterable[_Union[CandidateProgress, _Mapping]]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., key_name: _Optional[str] = ..., webhook: _Optional[_Union[WebhookDelivery, _Mapping]] = ...) -> None: ...

class CandidateProgress(_message.Message):
    __slots__ = ("index", "state", "phase", "image_id")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PHASE_FIELD_NUMBER: _ClassVar[int]
    IMAGE_ID_FIELD_NUMBER: _ClassVar[int]
    index: int
    state: str
    phase: str
    image_id: str
    def __init__(self, index: _Optional[int] = ..., state: _Optional[str] = ..., phase: _Optional[str] = ..., image_id: _Optional[str] = ...) -> None: ...

class WebhookDelivery(_message.Message):
    __slots__ = ("status", "attempts", "last_status_code", "last_error")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    LAST_STATUS_CODE_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    status: str
    attempts: int
    last_status_code: int
    last_error: str
    def __init__(self, status: _Optional[str] = ..., attempts: _Optional[int] = ..., last_status_code: _Optional[int] = ..., last_error: _Optional[str] = ...) -> None: ...

class CanvasSize(_message.Message):
    __slots__ = ("width", "height")
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    width: int
    height: int
    def __init__(self, width: _Optional[int] = ..., height: _Optional[int] = ...) -> None: ...

class Reference(_message.Message):
    __slots__ = ("image", "mime_type", "label", "source", "width", "height")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    MIME_TYPE_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    image: bytes
    mime_type: str
    label: str
    source: str
    width: int
    height: int
    def __init__(self, image: _Optional[bytes] = ..., mime_type: _Optional[str] = ..., label: _Optional[str] = ..., source: _Optional[str] = ..., width: _Optional[int] = ..., height: _Optional[int] = ...) -> None: ...

class ReferenceUse(_message.Message):
    __slots__ = ("index", "label", "source", "usage", "path_position", "tile", "width", "height")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    PATH_POSITION_FIELD_NUMBER: _ClassVar[int]
    TILE_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    index: int
    label: str
    source: str
    usage: str
    path_position: int
    tile: int
    width: int
    height: int
    def __init__(self, index: _Optional[int] = ..., label: _Optional[str] = ..., source: _Optional[str] = ..., usage: _Optional[str] = ..., path_position: _Optional[int] = ..., tile: _Optional[int] = ..., width: _Optional[int] = ..., height: _Optional[int] = ...) -> None: ...

class GenerateResponse(_message.Message):
    __slots__ = ("progress", "image", "summary")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    progress: Progress
    image: Image
    summary: GenerateSummary
    def __init__(self, progress: _Optional[_Union[Progress, _Mapping]] = ..., image: _Optional[_Union[Image, _Mapping]] = ..., summary: _Optional[_Union[GenerateSummary, _Mapping]] = ...) -> None: ...

class Progress(_message.Message):
    __slots__ = ("stage", "candidate_index", "phase", "detail", "queue_position", "elapsed_ms")
    class Stage(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STAGE_UNSPECIFIED: _ClassVar[Progress.Stage]
        STAGE_QUEUED: _ClassVar[Progress.Stage]
        STAGE_CANDIDATE_STARTED: _ClassVar[Progress.Stage]
        STAGE_CODEX_PHASE: _ClassVar[Progress.Stage]
        STAGE_CANDIDATE_FINISHED: _ClassVar[Progress.Stage]
    STAGE_UNSPECIFIED: Progress.Stage
    STAGE_QUEUED: Progress.Stage
    STAGE_CANDIDATE_STARTED: Progress.Stage
    STAGE_CODEX_PHASE: Progress.Stage
    STAGE_CANDIDATE_FINISHED: Progress.Stage
    STAGE_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_INDEX_FIELD_NUMBER: _ClassVar[int]
    PHASE_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    QUEUE_POSITION_FIELD_NUMBER: _ClassVar[int]
    ELAPSED_MS_FIELD_NUMBER: _ClassVar[int]
    stage: Progress.Stage
    candidate_index: int
    phase: str
    detail: str
    queue_position: int
    elapsed_ms: int
    def __init__(self, stage: _Optional[_Union[Progress.Stage, str]] = ..., candidate_index: _Optional[int] = ..., phase: _Optional[str] = ..., detail: _Optional[str] = ..., queue_position: _Optional[int] = ..., elapsed_ms: _Optional[int] = ...) -> None: ...

class Image(_message.Message):
    __slots__ = ("id", "request_id", "index", "label", "mime_type", "width", "height", "byte_size", "sha256", "revised_prompt", "file_path", "thread_id", "resolved_size", "duration_ms", "create_time", "prompt", "requested_size", "aspect", "quality", "output_format", "target_size", "aspect_ratio", "aspect_source", "fit", "native_width", "native_height", "resized", "enlarged", "references", "key_name", "account", "background", "alpha_source", "transparency", "usage")
    ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    MIME_TYPE_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    BYTE_SIZE_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    REVISED_PROMPT_FIELD_NUMBER: _ClassVar[int]
    FILE_PATH_FIELD_NUMBER: _ClassVar[int]
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_SIZE_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_SIZE_FIELD_NUMBER: _ClassVar[int]
    ASPECT_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FORMAT_FIELD_NUMBER: _ClassVar[int]
    TARGET_SIZE_FIELD_NUMBER: _ClassVar[int]
    ASPECT_RATIO_FIELD_NUMBER: _ClassVar[int]
    ASPECT_SOURCE_FIELD_NUMBER: _ClassVar[int]
    FIT_FIELD_NUMBER: _ClassVar[int]
    NATIVE_WIDTH_FIELD_NUMBER: _ClassVar[int]
    NATIVE_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    RESIZED_FIELD_NUMBER: _ClassVar[int]
    ENLARGED_FIELD_NUMBER: _ClassVar[int]
    REFERENCES_FIELD_NUMBER: _ClassVar[int]
    KEY_NAME_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    BACKGROUND_FIELD_NUMBER: _ClassVar[int]
    ALPHA_SOURCE_FIELD_NUMBER: _ClassVar[int]
    TRANSPARENCY_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    id: str
    request_id: str
    index: int
    label: str
    mime_type: str
    width: int
    height: int
    byte_size: int
    sha256: str
    revised_prompt: str
    file_path: str
    thread_id: str
    resolved_size: str
    duration_ms: int
    create_time: _timestamp_pb2.Timestamp
    prompt: str
    requested_size: str
    aspect: str
    quality: str
    output_format: str
    target_size: str
    aspect_ratio: str
    aspect_source: str
    fit: str
    native_width: int
    native_height: int
    resized: bool
    enlarged: bool
    references: _containers.RepeatedCompositeFieldContainer[ReferenceUse]
    key_name: str
    account: str
    background: str
    alpha_source: AlphaSource
    transparency: TransparencyCheck
    usage: TokenUsage
    def __init__(self, id: _Optional[str] = ..., request_id: _Optional[str] = ..., index: _Optional[int] = ..., label: _Optional[str] = ..., mime_type: _Optional[str] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., byte_size: _Optional[int] = ..., sha256: _Optional[str] = ..., revised_prompt: _Optional[str] = ..., file_path: _Optional[str] = ..., thread_id: _Optional[str] = ..., resolved_size: _Optional[str] = ..., duration_ms: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., prompt: _Optional[str] = ..., requested_size: _Optional[str] = ..., aspect: _Optional[str] = ..., quality: _Optional[str] = ..., output_format: _Optional[str] = ..., target_size: _Optional[str] = ..., aspect_ratio: _Optional[str] = ..., aspect_source: _Optional[str] = ..., fit: _Optional[str] = ..., native_width: _Optional[int] = ..., native_height: _Optional[int] = ..., resized: _Optional[bool] = ..., enlarged: _Optional[bool] = ..., references: _Optional[_Iterable[_Union[ReferenceUse, _Mapping]]] = ..., key_name: _Optional[str] = ..., account: _Optional[str] = ..., background: _Optional[str] = ..., alpha_source: _Optional[_Union[AlphaSource, str]] = ..., transparency: _Optional[_Union[TransparencyCheck, _Mapping]] = ..., usage: _Optional[_Union[TokenUsage, _Mapping]] = ...) -> None: ...

class TokenUsage(_message.Message):
    __slots__ = ("input_tokens", "cached_input_tokens", "output_tokens")
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    CACHED_INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    input_tokens: int
    cached_input_tokens: int
    output_tokens: int
    def __init__(self, input_tokens: _Optional[int] = ..., cached_input_tokens: _Optional[int] = ..., output_tokens: _Optional[int] = ...) -> None: ...

class TransparencyCheck(_message.Message):
    __slots__ = ("alpha_min", "alpha_max", "transparent_share", "opaque_share", "edge_residue", "key_color")
    ALPHA_MIN_FIELD_NUMBER: _ClassVar[int]
    ALPHA_MAX_FIELD_NUMBER: _ClassVar[int]
    TRANSPARENT_SHARE_FIELD_NUMBER: _ClassVar[int]
    OPAQUE_SHARE_FIELD_NUMBER: _ClassVar[int]
    EDGE_RESIDUE_FIELD_NUMBER: _ClassVar[int]
    KEY_COLOR_FIELD_NUMBER: _ClassVar[int]
    alpha_min: int
    alpha_max: int
    transparent_share: float
    opaque_share: float
    edge_residue: float
    key_color: str
    def __init__(self, alpha_min: _Optional[int] = ..., alpha_max: _Optional[int] = ..., transparent_share: _Optional[float] = ..., opaque_share: _Optional[float] = ..., edge_residue: _Optional[float] = ..., key_color: _Optional[str] = ...) -> None: ...

class GenerateSummary(_message.Message):
    __slots__ = ("request_id", "status", "model", "backend", "requested_size", "resolved_size", "quality", "output_format", "image_ids", "duration_ms", "background", "target_size", "aspect_ratio", "aspect_source", "fit", "references")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_SIZE_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_SIZE_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FORMAT_FIELD_NUMBER: _ClassVar[int]
    IMAGE_IDS_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    BACKGROUND_FIELD_NUMBER: _ClassVar[int]
    TARGET_SIZE_FIELD_NUMBER: _ClassVar[int]
    ASPECT_RATIO_FIELD_NUMBER: _ClassVar[int]
    ASPECT_SOURCE_FIELD_NUMBER: _ClassVar[int]
    FIT_FIELD_NUMBER: _ClassVar[int]
    REFERENCES_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    status: str
    model: str
    backend: str
    requested_size: str
    resolved_size: str
    quality: str
    output_format: str
    image_ids: _containers.RepeatedScalarFieldContainer[str]
    duration_ms: int
    background: str
    target_size: str
    aspect_ratio: str
    aspect_source: str
    fit: str
    references: _containers.RepeatedCompositeFieldContainer[ReferenceUse]
    def __init__(self, request_id: _Optional[str] = ..., status: _Optional[str] = ..., model: _Optional[str] = ..., backend: _Optional[str] = ..., requested_size: _Optional[str] = ..., resolved_size: _Optional[str] = ..., quality: _Optional[str] = ..., output_format: _Optional[str] = ..., image_ids: _Optional[_Iterable[str]] = ..., duration_ms: _Optional[int] = ..., background: _Optional[str] = ..., target_size: _Optional[str] = ..., aspect_ratio: _Optional[str] = ..., aspect_source: _Optional[str] = ..., fit: _Optional[str] = ..., references: _Optional[_Iterable[_Union[ReferenceUse, _Mapping]]] = ...) -> None: ...

class GetCapabilitiesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetCapabilitiesResponse(_message.Message):
    __slots__ = ("model", "backend", "max_images", "output_formats", "qualities", "size_options", "ratio_options", "size_constraints", "high_resolution_presets", "references", "auth_required", "generation_timeout_ms", "presets", "aspect_names", "backgrounds", "aspect_options", "fits")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    MAX_IMAGES_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FORMATS_FIELD_NUMBER: _ClassVar[int]
    QUALITIES_FIELD_NUMBER: _ClassVar[int]
    SIZE_OPTIONS_FIELD_NUMBER: _ClassVar[int]
    RATIO_OPTIONS_FIELD_NUMBER: _ClassVar[int]
    SIZE_CONSTRAINTS_FIELD_NUMBER: _ClassVar[int]
    HIGH_RESOLUTION_PRESETS_FIELD_NUMBER: _ClassVar[int]
    REFERENCES_FIELD_NUMBER: _ClassVar[int]
    AUTH_REQUIRED_FIELD_NUMBER: _ClassVar[int]
    GENERATION_TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    PRESETS_FIELD_NUMBER: _ClassVar[int]
    ASPECT_NAMES_FIELD_NUMBER: _ClassVar[int]
    BACKGROUNDS_FIELD_NUMBER: _ClassVar[int]
    ASPECT_OPTIONS_FIELD_NUMBER: _ClassVar[int]
    FITS_FIELD_NUMBER: _ClassVar[int]
    model: str
    backend: str
    max_images: int
    output_formats: _containers.RepeatedScalarFieldContainer[str]
    qualities: _containers.RepeatedScalarFieldContainer[str]
    size_options: _containers.RepeatedScalarFieldContainer[str]
    ratio_options: _containers.RepeatedScalarFieldContainer[str]
    size_constraints: SizeConstraints
    high_resolution_presets: HighResolutionPresets
    references: ReferencePolicy
    auth_required: bool
    generation_timeout_ms: int
    presets: _containers.RepeatedCompositeFieldContainer[SizePreset]
    aspect_names: _containers.RepeatedScalarFieldContainer[str]
    backgrounds: _containers.RepeatedScalarFieldContainer[str]
    aspect_options: _containers.RepeatedCompositeFieldContainer[AspectOption]
    fits: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, model: _Optional[str] = ..., backend: _Optional[str] = ..., max_images: _Optional[int] = ..., output_formats: _Optional[_Iterable[str]] = ..., qualities: _Optional[_Iterable[str]] = ..., size_options: _Optional[_Iterable[str]] = ..., ratio_options: _Optional[_Iterable[str]] = ..., size_constraints: _Optional[_Union[SizeConstraints, _Mapping]] = ..., high_resolution_presets: _Optional[_Union[HighResolutionPresets, _Mapping]] = ..., references: _Optional[_Union[ReferencePolicy, _Mapping]] = ..., auth_required: _Optional[bool] = ..., generation_timeout_ms: _Optional[int] = ..., presets: _Optional[_Iterable[_Union[SizePreset, _Mapping]]] = ..., aspect_names: _Optional[_Iterable[str]] = ..., backgrounds: _Optional[_Iterable[str]] = ..., aspect_options: _Optional[_Iterable[_Union[AspectOption, _Mapping]]] = ..., fits: _Optional[_Iterable[str]] = ...) -> None: ...

class AspectOption(_message.Message):
    __slots__ = ("name", "kind", "aliases", "description")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ALIASES_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: str
    aliases: _containers.RepeatedScalarFieldContainer[str]
    description: str
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[str] = ..., aliases: _Optional[_Iterable[str]] = ..., description: _Optional[str] = ...) -> None: ...

class SizeConstraints(_message.Message):
    __slots__ = ("custom_size", "max_edge", "max_pixels", "min_pixels", "multiple_of", "max_ratio")
    CUSTOM_SIZE_FIELD_NUMBER: _ClassVar[int]
    MAX_EDGE_FIELD_NUMBER: _ClassVar[int]
    MAX_PIXELS_FIELD_NUMBER: _ClassVar[int]
    MIN_PIXELS_FIELD_NUMBER: _ClassVar[int]
    MULTIPLE_OF_FIELD_NUMBER: _ClassVar[int]
    MAX_RATIO_FIELD_NUMBER: _ClassVar[int]
    custom_size: bool
    max_edge: int
    max_pixels: int
    min_pixels: int
    multiple_of: int
    max_ratio: str
    def __init__(self, custom_size: _Optional[bool] = ..., max_edge: _Optional[int] = ..., max_pixels: _Optional[int] = ..., min_pixels: _Optional[int] = ..., multiple_of: _Optional[int] = ..., max_ratio: _Optional[str] = ...) -> None: ...

class HighResolutionPresets(_message.Message):
    __slots__ = ("landscape", "portrait", "square")
    LANDSCAPE_FIELD_NUMBER: _ClassVar[int]
    PORTRAIT_FIELD_NUMBER: _ClassVar[int]
    SQUARE_FIELD_NUMBER: _ClassVar[int]
    landscape: str
    portrait: str
    square: str
    def __init__(self, landscape: _Optional[str] = ..., portrait: _Optional[str] = ..., square: _Optional[str] = ...) -> None: ...

class SizePreset(_message.Message):
    __slots__ = ("name", "max_edge", "max_pixels")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MAX_EDGE_FIELD_NUMBER: _ClassVar[int]
    MAX_PIXELS_FIELD_NUMBER: _ClassVar[int]
    name: str
    max_edge: int
    max_pixels: int
    def __init__(self, name: _Optional[str] = ..., max_edge: _Optional[int] = ..., max_pixels: _Optional[int] = ...) -> None: ...

class ReferencePolicy(_message.Message):
    __slots__ = ("mode", "max_images", "max_bytes", "mime_types", "max_originals", "overflow_mode")
    MODE_FIELD_NUMBER: _ClassVar[int]
    MAX_IMAGES_FIELD_NUMBER: _ClassVar[int]
    MAX_BYTES_FIELD_NUMBER: _ClassVar[int]
    MIME_TYPES_FIELD_NUMBER: _ClassVar[int]
    MAX_ORIGINALS_FIELD_NUMBER: _ClassVar[int]
    OVERFLOW_MODE_FIELD_NUMBER: _ClassVar[int]
    mode: str
    max_images: int
    max_bytes: int
    mime_types: _containers.RepeatedScalarFieldContainer[str]
    max_originals: int
    overflow_mode: str
    def __init__(self, mode: _Optional[str] = ..., max_images: _Optional[int] = ..., max_bytes: _Optional[int] = ..., mime_types: _Optional[_Iterable[str]] = ..., max_originals: _Optional[int] = ..., overflow_mode: _Optional[str] = ...) -> None: ...

class HealthRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class HealthResponse(_message.Message):
    __slots__ = ("status", "ready", "backend", "model", "auth_required", "generation_timeout_ms", "codex", "slots", "problem", "accounts", "server_version", "codex_version", "codex_version_tested", "codex_tested_versions")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    READY_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    AUTH_REQUIRED_FIELD_NUMBER: _ClassVar[int]
    GENERATION_TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    CODEX_FIELD_NUMBER: _ClassVar[int]
    SLOTS_FIELD_NUMBER: _ClassVar[int]
    PROBLEM_FIELD_NUMBER: _ClassVar[int]
    ACCOUNTS_FIELD_NUMBER: _ClassVar[int]
    SERVER_VERSION_FIELD_NUMBER: _ClassVar[int]
    CODEX_VERSION_FIELD_NUMBER: _ClassVar[int]
    CODEX_VERSION_TESTED_FIELD_NUMBER: _ClassVar[int]
    CODEX_TESTED_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    status: str
    ready: bool
    backend: str
    model: str
    auth_required: bool
    generation_timeout_ms: int
    codex: CodexStatus
    slots: SlotStatus
    problem: str
    accounts: _containers.RepeatedCompositeFieldContainer[AccountStatus]
    server_version: str
    codex_version: str
    codex_version_tested: bool
    codex_tested_versions: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, status: _Optional[str] = ..., ready: _Optional[bool] = ..., backend: _Optional[str] = ..., model: _Optional[str] = ..., auth_required: _Optional[bool] = ..., generation_timeout_ms: _Optional[int] = ..., codex: _Optional[_Union[CodexStatus, _Mapping]] = ..., slots: _Optional[_Union[SlotStatus, _Mapping]] = ..., problem: _Optional[str] = ..., accounts: _Optional[_Iterable[_Union[AccountStatus, _Mapping]]] = ..., server_version: _Optional[str] = ..., codex_version: _Optional[str] = ..., codex_version_tested: _Optional[bool] = ..., codex_tested_versions: _Optional[_Iterable[str]] = ...) -> None: ...

class AccountStatus(_message.Message):
    __slots__ = ("name", "codex_home", "found", "logged_in", "in_use", "limit", "exhausted_until", "ready")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CODEX_HOME_FIELD_NUMBER: _ClassVar[int]
    FOUND_FIELD_NUMBER: _ClassVar[int]
    LOGGED_IN_FIELD_NUMBER: _ClassVar[int]
    IN_USE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    EXHAUSTED_UNTIL_FIELD_NUMBER: _ClassVar[int]
    READY_FIELD_NUMBER: _ClassVar[int]
    name: str
    codex_home: str
    found: bool
    logged_in: bool
    in_use: int
    limit: int
    exhausted_until: _timestamp_pb2.Timestamp
    ready: bool
    def __init__(self, name: _Optional[str] = ..., codex_home: _Optional[str] = ..., found: _Optional[bool] = ..., logged_in: _Optional[bool] = ..., in_use: _Optional[int] = ..., limit: _Optional[int] = ..., exhausted_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ready: _Optional[bool] = ...) -> None: ...

class CodexStatus(_message.Message):
    __slots__ = ("found", "path", "version", "logged_in", "custom_provider")
    FOUND_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    LOGGED_IN_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_PROVIDER_FIELD_NUMBER: _ClassVar[int]
    found: bool
    path: str
    version: str
    logged_in: bool
    custom_provider: bool
    def __init__(self, found: _Optional[bool] = ..., path: _Optional[str] = ..., version: _Optional[str] = ..., logged_in: _Optional[bool] = ..., custom_provider: _Optional[bool] = ...) -> None: ...

class SlotStatus(_message.Message):
    __slots__ = ("in_use", "free", "limit", "queued", "queue_limit")
    IN_USE_FIELD_NUMBER: _ClassVar[int]
    FREE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    QUEUED_FIELD_NUMBER: _ClassVar[int]
    QUEUE_LIMIT_FIELD_NUMBER: _ClassVar[int]
    in_use: int
    free: int
    limit: int
    queued: int
    queue_limit: int
    def __init__(self, in_use: _Optional[int] = ..., free: _Optional[int] = ..., limit: _Optional[int] = ..., queued: _Optional[int] = ..., queue_limit: _Optional[int] = ...) -> None: ...

class GetImageRequest(_message.Message):
    __slots__ = ("image_id",)
    IMAGE_ID_FIELD_NUMBER: _ClassVar[int]
    image_id: str
    def __init__(self, image_id: _Optional[str] = ...) -> None: ...

class GetImageResponse(_message.Message):
    __slots__ = ("image",)
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    image: Image
    def __init__(self, image: _Optional[_Union[Image, _Mapping]] = ...) -> None: ...

class GetImageFileRequest(_message.Message):
    __slots__ = ("image_id",)
    IMAGE_ID_FIELD_NUMBER: _ClassVar[int]
    image_id: str
    def __init__(self, image_id: _Optional[str] = ...) -> None: ...

class GetImageFileResponse(_message.Message):
    __slots__ = ("content_type", "total_size", "sha256", "data")
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    content_type: str
    total_size: int
    sha256: str
    data: bytes
    def __init__(self, content_type: _Optional[str] = ..., total_size: _Optional[int] = ..., sha256: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...

class ListImagesRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "start_time", "end_time", "request_id", "key_name", "prompt_contains")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_NAME_FIELD_NUMBER: _ClassVar[int]
    PROMPT_CONTAINS_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    request_id: str
    key_name: str
    prompt_contains: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., request_id: _Optional[str] = ..., key_name: _Optional[str] = ..., prompt_contains: _Optional[str] = ...) -> None: ...

class ListImagesResponse(_message.Message):
    __slots__ = ("images", "next_page_token")
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    images: _containers.RepeatedCompositeFieldContainer[Image]
    next_page_token: str
    def __init__(self, images: _Optional[_Iterable[_Union[Image, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteImageRequest(_message.Message):
    __slots__ = ("image_id",)
    IMAGE_ID_FIELD_NUMBER: _ClassVar[int]
    image_id: str
    def __init__(self, image_id: _Optional[str] = ...) -> None: ...

class DeleteImageResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListRequestsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "start_time", "end_time", "request_id", "key_name", "status", "prompt_contains")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PROMPT_CONTAINS_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    request_id: str
    key_name: str
    status: str
    prompt_contains: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., request_id: _Optional[str] = ..., key_name: _Optional[str] = ..., status: _Optional[str] = ..., prompt_contains: _Optional[str] = ...) -> None: ...

class ListRequestsResponse(_message.Message):
    __slots__ = ("requests", "next_page_token")
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[RequestRecord]
    next_page_token: str
    def __init__(self, requests: _Optional[_Iterable[_Union[RequestRecord, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class RequestRecord(_message.Message):
    __slots__ = ("request_id", "status", "error_reason", "error_message", "key_name", "surface", "prompt", "count", "requested_size", "resolved_size", "aspect", "quality", "output_format", "reference_count", "create_time", "end_time", "queue_wait_ms", "codex_ms", "duration_ms", "accounts", "image_ids")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ERROR_REASON_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    KEY_NAME_FIELD_NUMBER: _ClassVar[int]
    SURFACE_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_SIZE_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_SIZE_FIELD_NUMBER: _ClassVar[int]
    ASPECT_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FORMAT_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_COUNT_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    QUEUE_WAIT_MS_FIELD_NUMBER: _ClassVar[int]
    CODEX_MS_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    ACCOUNTS_FIELD_NUMBER: _ClassVar[int]
    IMAGE_IDS_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    status: str
    error_reason: str
    error_message: str
    key_name: str
    surface: str
    prompt: str
    count: int
    requested_size: str
    resolved_size: str
    aspect: str
    quality: str
    output_format: str
    reference_count: int
    create_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    queue_wait_ms: int
    codex_ms: int
    duration_ms: int
    accounts: _containers.RepeatedScalarFieldContainer[str]
    image_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, request_id: _Optional[str] = ..., status: _Optional[str] = ..., error_reason: _Optional[str] = ..., error_message: _Optional[str] = ..., key_name: _Optional[str] = ..., surface: _Optional[str] = ..., prompt: _Optional[str] = ..., count: _Optional[int] = ..., requested_size: _Optional[str] = ..., resolved_size: _Optional[str] = ..., aspect: _Optional[str] = ..., quality: _Optional[str] = ..., output_format: _Optional[str] = ..., reference_count: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., queue_wait_ms: _Optional[int] = ..., codex_ms: _Optional[int] = ..., duration_ms: _Optional[int] = ..., accounts: _Optional[_Iterable[str]] = ..., image_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class GetRequestRequest(_message.Message):
    __slots__ = ("request_id",)
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    def __init__(self, request_id: _Optional[str] = ...) -> None: ...

class GetRequestResponse(_message.Message):
    __slots__ = ("request", "images", "key_usage")
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    KEY_USAGE_FIELD_NUMBER: _ClassVar[int]
    request: RequestRecord
    images: _containers.RepeatedCompositeFieldContainer[Image]
    key_usage: KeyUsage
    def __init__(self, request: _Optional[_Union[RequestRecord, _Mapping]] = ..., images: _Optional[_Iterable[_Union[Image, _Mapping]]] = ..., key_usage: _Optional[_Union[KeyUsage, _Mapping]] = ...) -> None: ...

class KeyUsage(_message.Message):
    __slots__ = ("key_name", "images_today", "images_per_day", "concurrent_requests", "max_concurrent_requests")
    KEY_NAME_FIELD_NUMBER: _ClassVar[int]
    IMAGES_TODAY_FIELD_NUMBER: _ClassVar[int]
    IMAGES_PER_DAY_FIELD_NUMBER: _ClassVar[int]
    CONCURRENT_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    MAX_CONCURRENT_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    key_name: str
    images_today: int
    images_per_day: int
    concurrent_requests: int
    max_concurrent_requests: int
    def __init__(self, key_name: _Optional[str] = ..., images_today: _Optional[int] = ..., images_per_day: _Optional[int] = ..., concurrent_requests: _Optional[int] = ..., max_concurrent_requests: _Optional[int] = ...) -> None: ...
