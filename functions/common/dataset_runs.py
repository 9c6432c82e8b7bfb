"""What the train function's runs leave in the state bucket for Kashf, as typed documents.

- A **tagging request** (``requests/<id>.json``): the inputs to tag, the dataset version to tag
  them with and, for videos, how to sample frames. The API writes it ``processing``; the train
  function finishes it ``done`` with what the models found in each input (``InputTags``: tag
  ids, probabilities, frame times), or ``failed`` with a reason. Kashf's answer shapes (titles,
  rounding, the unknown face, ``H:MM:SS`` times) are rendered by the router, never stored.
- A **dataset operation** (``operations/<id>.json``): an export or an import, its parameters and,
  once ``done``, its outcome (rows written; items, reports and line errors read).
- A training run's **predictions** (``runs/<version>/predictions.json``): per tag, the items the
  model tags and the reports it doubts.

The stored JSON is what earlier versions wrote, with one exception: a tagging request finished
before results were stored as ``InputTags`` reads as failed, so asking again re-runs it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from functions.common.datasets import DatasetType, operation_key, predictions_key, request_key
from functions.common.state_store import Document, StateStore, update


class Stored(BaseModel):
    """A document the API and the train function share: frozen, tolerant of fields it does not know."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class RunState(StrEnum):
    WAITING = "waiting"  # an export or import not taken up yet
    PROCESSING = "processing"  # a tagging request not answered yet
    DONE = "done"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self in {RunState.DONE, RunState.FAILED}


class TaggingKind(StrEnum):
    TEXTS = "texts"
    IMAGES = "images"
    FACES = "faces"
    VIDEO_FRAMES = "video_frames"
    VIDEO_FACES = "video_faces"
    VIDEOS = "videos"

    @property
    def dataset_types(self) -> tuple[DatasetType, ...]:
        """The datasets whose models can answer it."""
        return {
            TaggingKind.TEXTS: (DatasetType.TEXT,),
            TaggingKind.IMAGES: (DatasetType.IMAGE,),
            TaggingKind.FACES: (DatasetType.FACE,),
            TaggingKind.VIDEO_FRAMES: (DatasetType.IMAGE,),
            TaggingKind.VIDEO_FACES: (DatasetType.FACE,),
            TaggingKind.VIDEOS: (DatasetType.IMAGE, DatasetType.FACE),
        }[self]

    @property
    def is_video(self) -> bool:
        return self in {TaggingKind.VIDEO_FRAMES, TaggingKind.VIDEO_FACES, TaggingKind.VIDEOS}


class TextInput(Stored):
    content: str


class MediaInput(Stored):
    url: str  # as the caller named it (an upload: its file name)
    media_key: str  # the copy in the media bucket


TaggingInput = TextInput | MediaInput


class VideoSampling(Stored):
    every_ms: int = Field(default=100, gt=0)
    min_frame_diff: float = Field(default=0.4, ge=0.0, le=1.0)
    duration: float | None = Field(default=None, gt=0)  # seconds from the start; None: all


class TagScore(Stored):
    tag_id: int
    probability: float  # 0..1, at or above the tag model's threshold


class FrameTags(Stored):
    index: int  # the frame's number in the video
    seconds: float
    tags: tuple[TagScore, ...]


class InputTags(Stored):
    """What the models found in one input, most probable first.

    Texts and pictures: ``tags``. ``video_frames``/``video_faces``: ``frames``. ``videos``:
    ``tags``, each tag with its best probability over the sampled frames."""

    tags: tuple[TagScore, ...] = ()
    frames: tuple[FrameTags, ...] = ()


class TaggingRequest(Stored):
    id: str
    kind: TaggingKind
    state: RunState = RunState.PROCESSING
    version: str  # the dataset version the caller asked against
    params: VideoSampling | None = None  # videos only
    inputs: tuple[TaggingInput, ...]
    created_at: datetime
    results: tuple[InputTags, ...] | None = None  # once done, one per input
    failure_reason: str = ""
    finished_at: datetime | None = None

    @model_validator(mode="before")
    @classmethod
    def _earlier_documents(cls, doc: Any) -> Any:
        if not isinstance(doc, dict):
            return doc
        doc = dict(doc)
        if not doc.get("params"):
            doc["params"] = None  # texts and pictures were stored with {}
        if doc.get("state") == RunState.DONE and "results" not in doc:
            doc.update(state=RunState.FAILED, failure_reason="answered by an earlier version; ask again")
        return doc

    @model_validator(mode="after")
    def _inputs_fit_the_kind(self) -> TaggingRequest:
        wanted = TextInput if self.kind == TaggingKind.TEXTS else MediaInput
        if not all(isinstance(entry, wanted) for entry in self.inputs):
            raise ValueError(f"a {self.kind.value} request takes {wanted.__name__} inputs")
        if self.kind.is_video and self.params is None:
            raise ValueError("a video request needs its frame sampling (params)")
        if self.results is not None and len(self.results) != len(self.inputs):
            raise ValueError("a tagging request has one result per input")
        return self

    def texts(self) -> list[str]:
        return [entry.content for entry in self.inputs if isinstance(entry, TextInput)]

    def media(self) -> list[MediaInput]:
        return [entry for entry in self.inputs if isinstance(entry, MediaInput)]


class ExportParams(Stored):
    original_urls: bool = True  # images: the URL they came from, else Shenava's copy
    tag_names: bool = False  # tags by title instead of id


class ImportParams(Stored):
    report_items: bool = True  # False: register the items, not their reports
    tag_names: bool = False  # tags by title (a new title creates the tag) instead of id


class LineError(Stored):
    line: int
    error: str


class ImportOutcome(Stored):
    imported: int = 0  # rows read into items
    reports: int = 0  # of them, reports recorded
    errors: tuple[LineError, ...] = ()  # the rows left out, by line


class Operation(Stored):
    id: str
    dataset: str
    state: RunState = RunState.WAITING
    file_key: str  # the export's CSV, or the CSV to import, in the media bucket
    created_at: datetime
    failure_reason: str = ""


class DatasetExport(Operation):
    kind: Literal["export"] = "export"
    params: ExportParams = ExportParams()
    media_base: str  # the API's URL of a dataset image, for images without an original URL
    rows: int = 0


class DatasetImport(Operation):
    kind: Literal["import"] = "import"
    params: ImportParams = ImportParams()
    outcome: ImportOutcome = ImportOutcome()

    @model_validator(mode="before")
    @classmethod
    def _flat_outcome(cls, doc: Any) -> Any:
        """Earlier versions stored the outcome's fields beside the others."""
        if isinstance(doc, dict) and "outcome" not in doc and "imported" in doc:
            return doc | {"outcome": {k: doc[k] for k in ("imported", "reports", "errors") if k in doc}}
        return doc


DatasetOperation = Annotated[DatasetExport | DatasetImport, Field(discriminator="kind")]
_operation: TypeAdapter[DatasetOperation] = TypeAdapter(DatasetOperation)


class TagPredictions(Stored):
    predicted: tuple[tuple[int, float], ...] = ()  # (item id, probability), most probable first
    notsure: tuple[int, ...] = ()  # reported items the out-of-fold model disagreed with


class Predictions(Stored):
    tags: dict[str, TagPredictions] = Field(default_factory=dict)  # by str(tag id)

    def of(self, tag_id: int) -> TagPredictions:
        return self.tags.get(str(tag_id), TagPredictions())


TaggingFinish = Callable[[TaggingRequest], TaggingRequest]
OperationFinish = Callable[[DatasetExport | DatasetImport], DatasetExport | DatasetImport]
PredictionsChange = Callable[[Predictions], Predictions]


def _dump(model: BaseModel) -> Document:
    return model.model_dump(mode="json")


class RunDocuments:
    """Reads and conditional writes of tagging requests, operations and predictions."""

    def __init__(self, store: StateStore) -> None:
        self.store = store

    async def tagging(self, tenant: str, slug: str, request_id: str) -> TaggingRequest | None:
        found = await self.store.get(request_key(tenant, slug, request_id))
        return TaggingRequest.model_validate(found[0]) if found else None

    async def start_tagging(
        self, tenant: str, slug: str, request: TaggingRequest
    ) -> tuple[TaggingRequest, bool]:
        """Store ``request`` unless an unfailed one of its id is there (a concurrent identical call's):
        the stored request, and whether it is this one."""
        started: list[bool] = []

        def start(doc: Document | None) -> Document | None:
            started.clear()
            if doc is not None and TaggingRequest.model_validate(doc).state != RunState.FAILED:
                return None
            started.append(True)
            return _dump(request)

        stored = await update(self.store, request_key(tenant, slug, request.id), start)
        return TaggingRequest.model_validate(stored), bool(started)

    async def finish_tagging(self, tenant: str, slug: str, request_id: str, finish: TaggingFinish) -> None:
        """Apply ``finish`` to the request unless it is gone or already finished."""

        def apply(doc: Document | None) -> Document | None:
            if doc is None:
                return None
            current = TaggingRequest.model_validate(doc)
            return None if current.state.finished else _dump(finish(current))

        await update(self.store, request_key(tenant, slug, request_id), apply)

    async def operation(self, tenant: str, slug: str, run_id: str) -> DatasetExport | DatasetImport | None:
        found = await self.store.get(operation_key(tenant, slug, run_id))
        return _operation.validate_python(found[0]) if found else None

    async def create_operation(self, tenant: str, operation: DatasetExport | DatasetImport) -> None:
        await self.store.create(operation_key(tenant, operation.dataset, operation.id), _dump(operation))

    async def finish_operation(self, tenant: str, slug: str, run_id: str, finish: OperationFinish) -> None:
        """Apply ``finish`` to the operation unless it is gone or already finished."""

        def apply(doc: Document | None) -> Document | None:
            if doc is None:
                return None
            current = _operation.validate_python(doc)
            return None if current.state.finished else _dump(finish(current))

        await update(self.store, operation_key(tenant, slug, run_id), apply)

    async def predictions(self, tenant: str, slug: str, version: str) -> Predictions:
        if not version:
            return Predictions()
        found = await self.store.get(predictions_key(tenant, slug, version))
        return Predictions.model_validate(found[0]) if found else Predictions()

    async def put_predictions(self, tenant: str, slug: str, version: str, predictions: Predictions) -> None:
        await self.store.put(predictions_key(tenant, slug, version), _dump(predictions))

    async def change_predictions(
        self, tenant: str, slug: str, version: str, change: PredictionsChange
    ) -> None:
        def apply(doc: Document | None) -> Document:
            return _dump(change(Predictions.model_validate(doc or {})))

        await update(self.store, predictions_key(tenant, slug, version), apply)
