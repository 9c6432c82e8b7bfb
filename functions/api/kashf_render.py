"""Kashf's answers: the shapes of its document, rendered from datasets, items, runs and requests.

Times are ISO 8601 text (``trained_at``, ``processed``). Listings are ``PAGE_SIZE`` rows per page
with links to the next and previous pages. Tagging answers are ``kashf_tag_answers``'.
"""

from __future__ import annotations

import json
from typing import Generic, Literal, TypeVar

from fastapi import Request
from pydantic import BaseModel

from functions.api.kashf_service import DatasetView, Predicted, Reported
from functions.common.dataset_runs import (
    DatasetExport,
    DatasetImport,
    LineError,
    RunState,
)
from functions.common.datasets import Dataset, DatasetType, Evaluation, Item, Tag
from functions.common.errors import BadRequest, NotFound

PAGE_SIZE = 50
UNKNOWN_FACE_ID, UNKNOWN_FACE_TITLE = 0, "ناآشنا"
Row = TypeVar("Row")


# datasets and tags


class Precision(BaseModel):
    """``list_datasets``' evaluation: fractions, as the document's sample (``"precision": 0.94``);
    ``dataset_info`` gives the same figures in percent, as its own sample does (``"precision": 91``)."""

    precision: float
    recall: float

    @classmethod
    def of(cls, evaluation: Evaluation) -> Precision:
        return cls(precision=round(evaluation.precision / 100, 3), recall=round(evaluation.recall / 100, 3))


class DatasetRow(BaseModel):
    title: str
    type: str
    slug: str
    tag_count: int
    report_count: int
    state: str
    evaluation: Precision | None
    trained_at: str


def dataset_row(dataset: Dataset, report_count: int) -> DatasetRow:
    evaluation = dataset.evaluation
    return DatasetRow(
        title=dataset.title,
        type=dataset.type.wire,
        slug=dataset.slug,
        tag_count=len(dataset.tags),
        report_count=report_count,
        state=dataset.state.value,
        evaluation=Precision.of(evaluation) if evaluation else None,
        trained_at=dataset.trained_at.isoformat() if dataset.trained_at else "",
    )


class TagInfo(BaseModel):
    title: str
    id: int
    active: bool
    reports: int
    positive_reports: int
    predictions: int
    notsure_reports: int
    evaluation: Evaluation | None
    model: str | None


class DatasetInfoAnswer(BaseModel):
    title: str
    slug: str
    type: str
    state: str
    report_count: int
    data_count: int
    evaluation: Evaluation | None
    trained_at: str | None
    failure_reason: str | None
    tags: list[TagInfo] | None = None  # only when asked for (left out of the answer otherwise)


def dataset_info(view: DatasetView, with_tags: bool) -> DatasetInfoAnswer:
    dataset, items = view.dataset, view.items
    answer = DatasetInfoAnswer(
        title=dataset.title,
        slug=dataset.slug,
        type=dataset.type.wire,
        state=dataset.state.value,
        report_count=sum(len(item.reports) for item in items),
        data_count=len(items),
        evaluation=dataset.evaluation,
        trained_at=dataset.trained_at.isoformat() if dataset.trained_at else None,
        failure_reason=dataset.failure_reason or None,
    )
    if with_tags:
        answer.tags = [_tag_info(tag, view) for tag in dataset.tags.values()]
    return answer


def _tag_info(tag: Tag, view: DatasetView) -> TagInfo:
    labels = [label for item in view.items if (label := item.label(tag.id)) is not None]
    predictions = view.predictions.of(tag.id)
    return TagInfo(
        title=tag.title,
        id=tag.id,
        active=tag.active,
        reports=len(labels),
        positive_reports=sum(labels),
        predictions=len(predictions.predicted),
        notsure_reports=len(predictions.notsure),
        evaluation=tag.evaluation,
        model=tag.model or None,
    )


class TagRow(BaseModel):
    title: str
    tag_id: int
    active: bool


def tag_row(tag: Tag) -> TagRow:
    return TagRow(title=tag.title, tag_id=tag.id, active=tag.active)


class DeletedTag(BaseModel):
    dataset: str
    deleted_reports: int


class StateAnswer(BaseModel):
    dataset: str
    state: str


def state_answer(dataset: Dataset) -> StateAnswer:
    return StateAnswer(dataset=dataset.slug, state=dataset.state.value)


# items and reports


class ReportRow(BaseModel):
    tag_id: int
    positive: bool


class ItemData(BaseModel):
    reports: list[ReportRow]


class TextItem(BaseModel):
    id: int
    content: str
    data: ItemData
    processed: str | None


class ImageItem(BaseModel):
    id: int
    url: str
    media_url: str
    data: ItemData
    processed: str | None


class TextRow(BaseModel):
    text: TextItem


class ImageRow(BaseModel):
    image: ImageItem


class ReportedTextRow(TextRow):
    tag_id: int
    positive: bool


class ReportedImageRow(ImageRow):
    tag_id: int
    positive: bool


class PredictedText(TextItem):
    probability: float
    reported: bool | None


class PredictedImage(ImageItem):
    probability: float
    reported: bool | None


class FaceRow(BaseModel):
    id: int
    url: str
    width: int | None = None
    height: int | None = None
    data: ItemData
    processed: str | None


class ReportAnswer(BaseModel):
    report: str  # the document's "[[tag_id, positive]]", as text
    id: int


class RemovedReport(BaseModel):
    text_id: int | None = None
    image_id: int | None = None
    tag_id: int


def report_answer(reported: Reported) -> ReportAnswer:
    return ReportAnswer(report=json.dumps([[reported.tag_id, reported.positive]]), id=reported.item_id)


def _data(found: Item) -> ItemData:
    return ItemData(reports=[ReportRow(tag_id=int(t), positive=p) for t, p in found.reports.items()])


def _processed(found: Item) -> str | None:
    return found.processed.isoformat() if found.processed else None


def item(found: Item, kind: DatasetType, media_base: str) -> TextItem | ImageItem:
    if kind == DatasetType.TEXT:
        return TextItem(id=found.id, content=found.content, data=_data(found), processed=_processed(found))
    own = f"{media_base}{found.id}/"
    return ImageItem(
        id=found.id, url=found.url or own, media_url=own, data=_data(found), processed=_processed(found)
    )


def item_row(found: Item, kind: DatasetType, media_base: str) -> TextRow | ImageRow:
    rendered = item(found, kind, media_base)
    return TextRow(text=rendered) if isinstance(rendered, TextItem) else ImageRow(image=rendered)


def reported_row(
    found: Item, label: bool, tag_id: int, kind: DatasetType, media_base: str
) -> ReportedTextRow | ReportedImageRow:
    rendered = item(found, kind, media_base)
    if isinstance(rendered, TextItem):
        return ReportedTextRow(text=rendered, tag_id=tag_id, positive=label)
    return ReportedImageRow(image=rendered, tag_id=tag_id, positive=label)


def predicted_row(found: Predicted, kind: DatasetType, media_base: str) -> PredictedText | PredictedImage:
    rendered = item(found.item, kind, media_base)
    extra = {"probability": found.probability, "reported": found.reported}
    if isinstance(rendered, TextItem):
        return PredictedText.model_validate(rendered.model_dump() | extra)
    return PredictedImage.model_validate(rendered.model_dump() | extra)


def face_row(found: Item, media_base: str) -> FaceRow:
    url = found.url or f"{media_base}{found.id}/"
    return FaceRow(id=found.id, url=url, data=_data(found), processed=_processed(found))


# listings


class Items(BaseModel, Generic[Row]):
    count: int
    results: list[Row]


class Listing(BaseModel, Generic[Row]):
    count: int
    next: str | None
    previous: str | None
    results: list[Row]


class FaceListing(BaseModel):
    items: list[FaceRow]
    count: int
    next: str | None
    previous: str | None


def listing(request: Request, rows: list[Row], page: int) -> Listing[Row]:
    """Page ``page`` of ``rows`` (a page past the last is a 404; an empty listing has page 1)."""
    if page < 1:
        raise BadRequest("page must be 1 or more")
    start = (page - 1) * PAGE_SIZE
    if rows and start >= len(rows):
        raise NotFound(f"page {page} is past the last page")

    def link(number: int) -> str:
        return str(request.url.include_query_params(page=number))

    return Listing[Row](
        count=len(rows),
        next=link(page + 1) if page * PAGE_SIZE < len(rows) else None,
        previous=link(page - 1) if page > 1 else None,
        results=rows[start : start + PAGE_SIZE],
    )


def media_base(request: Request, slug: str) -> str:
    """The API's URL of a dataset image, less the item id."""
    return str(request.base_url).rstrip("/") + f"/api/dataset_media/{slug}/"


# exports and imports


class OperationAnswer(BaseModel):
    """An export or import; fields that do not apply (yet) are left out of the answer."""

    dataset: str
    id: str
    kind: Literal["export", "import"]
    state: str
    status_url: str
    file_url: str | None = None  # exports
    rows: int | None = None  # a finished export
    imported: int | None = None  # a finished import: rows read into items,
    reports: int | None = None  # reports recorded,
    errors: list[LineError] | None = None  # and the rows left out, by line
    failure_reason: str | None = None


def operation_answer(request: Request, operation: DatasetExport | DatasetImport) -> OperationAnswer:
    base = str(request.base_url).rstrip("/") + f"/api/dataset_operations/{operation.dataset}/{operation.id}/"
    answer = OperationAnswer(
        dataset=operation.dataset,
        id=operation.id,
        kind=operation.kind,
        state=operation.state.value,
        status_url=base,
    )
    done = operation.state == RunState.DONE
    if isinstance(operation, DatasetExport):
        answer.file_url = base + "file/"
        answer.rows = operation.rows if done else None
    elif done:
        outcome = operation.outcome
        answer.imported, answer.reports, answer.errors = (
            outcome.imported,
            outcome.reports,
            list(outcome.errors),
        )
    if operation.state == RunState.FAILED:
        answer.failure_reason = operation.failure_reason
    return answer
