"""Kashf (concept learning and tagging): the ``/api/…`` endpoints of its document, and ``/dataset_info/``.

Owns its paths, request bodies, answers and error body. Like Harf (the same vendor, Django REST
framework), errors are ``{"detail": "…"}``; auth is ``Authorization: Token KEY`` and datasets
belong to the caller's tenant. Listings are 50 per page (``?page=N``) with ``count``, ``next``,
``previous`` and ``results``.

Beyond the document, and needed by it: ``POST /api/create_dataset/`` (title, slug, type text /
image / face), ``GET /api/dataset_operations/<slug>/<id>/`` (an export's or import's state, line
errors and, for an export, ``file_url``), the export's CSV at ``…/<id>/file/``, and a dataset
image at ``GET /api/dataset_media/<slug>/<item id>/``.

``tag_*`` with ``wait`` true (the default) wait up to ``kashf_wait_timeout_s`` for the train
function; otherwise, or after that, they answer ``{"state": "processing"}`` and an identical call
later answers the result. ``tree_based`` is accepted: every Kashf model here is a tree ensemble
(LightGBM), so both values tag with it.
"""

from __future__ import annotations

import hashlib
import json
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError
from starlette.datastructures import FormData, UploadFile

from functions.api.auth import caller_tenant
from functions.api.kashf_service import KashfService, render_item
from functions.common.bootstrap import Deps
from functions.common.dataset_runs import (
    DatasetExport,
    DatasetImport,
    ExportParams,
    ImportParams,
    MediaInput,
    RunState,
    TaggingInput,
    TaggingKind,
    TaggingRequest,
    TagScore,
    TextInput,
    VideoSampling,
)
from functions.common.datasets import Dataset, DatasetType
from functions.common.errors import BadRequest, NotFound, PayloadTooLarge, Unprocessable
from functions.common.fetch import FetchLimits, fetch_file
from functions.common.images import CheckedImage, NotAVideo, check_image, fetch_image
from functions.common.media_store import read_bytes
from functions.common.probe import has_video_stream

PREFIXES = ("/api/", "/dataset_info/")
MAX_JSON_BYTES = 8 * 1024 * 1024
PAGE_SIZE = 50

M = TypeVar("M", bound=BaseModel)
router = APIRouter(tags=["Kashf"])
Tenant = Annotated[str, Depends(caller_tenant)]


def render_error(status: int, message: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"detail": message})


class Body(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class CreateDataset(Body):
    slug: str
    title: str = ""
    type: str = "text"


class DatasetRef(Body):
    dataset: str


class DatasetInfo(DatasetRef):
    tags: bool = True


class CreateTag(DatasetRef):
    title: str = Field(min_length=1, max_length=200)
    active: bool = True


class UpdateTag(CreateTag):
    tag_id: int


class TagRef(Body):
    tag_id: int


class TextReport(Body):
    content: str = Field(min_length=1)
    tag_id: int
    positive: bool = True


class ImageReport(Body):
    image_url: str = Field(min_length=1)
    tag_id: int
    positive: bool = True


class RemoveReport(Body):
    tag_id: int
    text_id: int | None = None
    image_id: int | None = None


class TagReports(TagRef):
    reported_positive: bool | None = None


class TagPredictions(DatasetRef):
    tag_id: int


class ListItems(DatasetRef):
    ids: list[int] = Field(validation_alias=AliasChoices("text_ids", "image_ids", "images_ids", "ids"))


class Search(DatasetRef):
    query: str
    reported: bool | None = None
    tag_id: int | None = None


class Train(DatasetRef):
    pass


class Retag(DatasetRef):
    max_predictions: int = Field(gt=0)


class Export(DatasetRef):
    original_urls: bool = True
    tag_names: bool = False


class Import(DatasetRef):
    csv_url: str = ""
    report_items: bool = True
    tag_names: bool = False


class TagTexts(DatasetRef):
    contents: list[str] = Field(min_length=1)
    wait: bool = True
    tree_based: bool = False


class TagImages(DatasetRef):
    image_urls: list[str] = Field(default_factory=list)
    wait: bool = True


class TagVideos(DatasetRef):
    video_urls: list[str] = Field(min_length=1)
    every_ms: int = Field(default=100, gt=0)
    min_frame_diff: float = Field(default=0.4, ge=0.0, le=1.0)
    duration: float | None = Field(default=None, gt=0)
    wait: bool = True


def _deps(request: Request) -> Deps:
    deps: Deps = request.app.state.deps
    return deps


def service(request: Request) -> KashfService:
    return KashfService(_deps(request))


Service = Annotated[KashfService, Depends(service)]


async def parse(request: Request, model: type[M]) -> M:
    """A JSON body, or the fields of a form body, validated into ``model`` (400 if not)."""
    data = await _fields(request)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise BadRequest(_problems(exc)) from exc


async def _fields(request: Request) -> Any:
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        form = await request.form()
        return {key: _form_value(value) for key, value in form.items() if not isinstance(value, UploadFile)}
    body = await request.body()
    if len(body) > MAX_JSON_BYTES:
        raise PayloadTooLarge(f"the JSON body is larger than {MAX_JSON_BYTES} bytes")
    if not body.strip():
        return {}
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        raise BadRequest(
            f"the body is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from exc


def _form_value(value: str) -> Any:
    lowered = value.strip().lower()
    if lowered in {"true", "false"}:
        return lowered == "true"
    if value.strip().startswith("["):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _problems(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:3]:
        where = ".".join(str(p) for p in error.get("loc", ()))
        parts.append(f"{where or 'body'}: {error.get('msg', 'invalid')}")
    return "; ".join(parts)


@dataclass(frozen=True)
class Page:
    count: int
    page: int
    results: list[dict[str, Any]]

    @property
    def has_next(self) -> bool:
        return self.page * PAGE_SIZE < self.count


def paged(rows: list[dict[str, Any]], page: int) -> Page:
    if page < 1:
        raise BadRequest("page must be 1 or more")
    start = (page - 1) * PAGE_SIZE
    if rows and start >= len(rows):
        raise NotFound(f"page {page} is past the last page")
    return Page(count=len(rows), page=page, results=rows[start : start + PAGE_SIZE])


def failed_request(request: TaggingRequest) -> Unprocessable:
    return Unprocessable(f"tagging failed: {request.failure_reason or 'unknown reason'}")


def _page_of(request: Request) -> int:
    raw = request.query_params.get("page", "1")
    if not raw.isdigit():
        raise BadRequest(f"page must be a positive integer, not {raw!r}")
    return int(raw)


def _listing(request: Request, page: Page) -> dict[str, Any]:
    def link(number: int) -> str:
        return str(request.url.include_query_params(page=number))

    return {
        "count": page.count,
        "next": link(page.page + 1) if page.has_next else None,
        "previous": link(page.page - 1) if page.page > 1 else None,
        "results": page.results,
    }


def media_base(request: Request, slug: str) -> str:
    return str(request.base_url).rstrip("/") + f"/api/dataset_media/{slug}/"


def _kind(raw: str) -> DatasetType:
    value = raw.strip().lower().removesuffix("-tag")
    try:
        return DatasetType(value)
    except ValueError as exc:
        raise BadRequest(f"type must be text, image or face, not {raw!r}") from exc


def _check_count(settings_max: int, count: int, what: str) -> None:
    if count > settings_max:
        raise BadRequest(f"at most {settings_max} {what} in one request, not {count}")


# datasets


def _dataset_row(dataset: Dataset, report_count: int | None = None) -> dict[str, Any]:
    evaluation = dataset.evaluation
    return {
        "title": dataset.title,
        "type": dataset.type.wire,
        "slug": dataset.slug,
        "tag_count": len(dataset.tags),
        "report_count": report_count,
        "state": dataset.state.value,
        "evaluation": {"precision": evaluation.precision, "recall": evaluation.recall}
        if evaluation
        else None,
        "trained_at": dataset.trained_at.isoformat() if dataset.trained_at else "",
    }


@router.post("/api/create_dataset/", status_code=201)
async def create_dataset(request: Request, tenant: Tenant, kashf: Service) -> dict[str, Any]:
    body = await parse(request, CreateDataset)
    dataset = await kashf.create_dataset(tenant, body.slug, body.title or body.slug, _kind(body.type))
    return _dataset_row(dataset, 0)


@router.get("/api/list_datasets/")
async def list_datasets(tenant: Tenant, kashf: Service) -> list[dict[str, Any]]:
    rows = []
    for dataset in await kashf.datasets(tenant):
        rows.append(_dataset_row(dataset, await kashf.report_count(tenant, dataset.slug)))
    return rows


@router.post("/dataset_info/")
@router.post("/api/dataset_info/")
async def dataset_info(request: Request, tenant: Tenant, kashf: Service) -> dict[str, Any]:
    body = await parse(request, DatasetInfo)
    dataset, items, predictions = await kashf.info(tenant, body.dataset)
    evaluation = dataset.evaluation
    answer: dict[str, Any] = {
        "title": dataset.title,
        "slug": dataset.slug,
        "type": dataset.type.wire,
        "state": dataset.state.value,
        "report_count": sum(len(item.reports) for item in items),
        "data_count": len(items),
        "evaluation": evaluation.model_dump() if evaluation else None,
        "trained_at": dataset.trained_at.isoformat() if dataset.trained_at else None,
        "failure_reason": dataset.failure_reason or None,
    }
    if body.tags:
        answer["tags"] = [
            {
                "title": tag.title,
                "id": tag.id,
                "active": tag.active,
                "reports": sum(1 for item in items if item.label(tag.id) is not None),
                "positive_reports": sum(1 for item in items if item.label(tag.id)),
                "predictions": len(predictions.of(tag.id).predicted),
                "notsure_reports": len(predictions.of(tag.id).notsure),
                "evaluation": tag.evaluation.model_dump() if tag.evaluation else None,
                "model": tag.model or None,
            }
            for tag in dataset.tags.values()
        ]
    return answer


# tags


def _tag_row(tag: Any) -> dict[str, Any]:
    return {"title": tag.title, "tag_id": tag.id, "active": tag.active}


@router.post("/api/create_tag/", status_code=201)
async def create_tag(request: Request, tenant: Tenant, kashf: Service) -> dict[str, Any]:
    body = await parse(request, CreateTag)
    return _tag_row(await kashf.create_tag(tenant, body.dataset, body.title, body.active))


@router.post("/api/update_tag/")
async def update_tag(request: Request, tenant: Tenant, kashf: Service) -> dict[str, Any]:
    body = await parse(request, UpdateTag)
    return _tag_row(await kashf.update_tag(tenant, body.dataset, body.tag_id, body.title, body.active))


@router.post("/api/delete_tag/")
async def delete_tag(request: Request, tenant: Tenant, kashf: Service) -> dict[str, Any]:
    body = await parse(request, TagRef)
    slug, deleted = await kashf.delete_tag(tenant, body.tag_id)
    return {"dataset": slug, "deleted_reports": deleted}


# reports


async def _report_list(request: Request, model: type[M]) -> list[M]:
    """A JSON list of reports (or one report), validated; 400 naming the first problem."""
    data = await _fields(request)
    entries = data if isinstance(data, list) else [data]
    _check_count(_deps(request).settings.kashf_max_inputs, len(entries), "reports")
    try:
        reports = [model.model_validate(entry) for entry in entries]
    except ValidationError as exc:
        raise BadRequest(_problems(exc)) from exc
    if not reports:
        raise BadRequest("send at least one report")
    return reports


@router.post("/api/report_text_tags/")
async def report_text_tags(request: Request, tenant: Tenant, kashf: Service) -> list[dict[str, Any]]:
    reports = await _report_list(request, TextReport)
    return await kashf.report_texts(tenant, [(r.content, r.tag_id, r.positive) for r in reports])


@router.post("/api/report_image_tags/")
async def report_image_tags(request: Request, tenant: Tenant, kashf: Service) -> list[dict[str, Any]]:
    deps = _deps(request)
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        form = await request.form()
        fields = {k: _form_value(v) for k, v in form.items() if not isinstance(v, UploadFile)}
        uploads = await _uploaded_images(form, deps)
        if not uploads:
            raise BadRequest("send the image as a multipart file (or JSON with image_url)")
        try:
            tag = TagRef.model_validate(fields)
            positive = bool(fields.get("positive", True))
        except ValidationError as exc:
            raise BadRequest(_problems(exc)) from exc
        return await kashf.report_images(tenant, [(image, "", tag.tag_id, positive) for image in uploads])
    reports = await _report_list(request, ImageReport)
    for report in reports:  # unknown tags answer 404 before any download
        await kashf.tag_in(tenant, report.tag_id)
    images = [await _fetch_image(report.image_url, deps) for report in reports]
    return await kashf.report_images(
        tenant, [(image, r.image_url, r.tag_id, r.positive) for image, r in zip(images, reports, strict=True)]
    )


async def _fetch_image(url: str, deps: Deps) -> CheckedImage:
    settings = deps.settings
    return await fetch_image(url, FetchLimits.from_settings(settings), settings.kashf_max_image_bytes)


async def _uploaded_images(form: FormData, deps: Deps) -> list[CheckedImage]:
    images = []
    for _, value in form.multi_items():
        if isinstance(value, UploadFile):
            data = await value.read(deps.settings.kashf_max_image_bytes + 1)
            if len(data) > deps.settings.kashf_max_image_bytes:
                raise PayloadTooLarge(
                    f"{value.filename} is larger than {deps.settings.kashf_max_image_bytes} bytes"
                )
            images.append(check_image(data, value.filename or "the uploaded file"))
    _check_count(deps.settings.kashf_max_inputs, len(images), "images")
    return images


@router.post("/api/remove_tag_report/")
async def remove_tag_report(request: Request, tenant: Tenant, kashf: Service) -> dict[str, Any]:
    body = await parse(request, RemoveReport)
    item_id = body.text_id if body.text_id is not None else body.image_id
    if item_id is None:
        raise BadRequest("send text_id or image_id with tag_id")
    await kashf.remove_report(tenant, item_id, body.tag_id)
    key = "text_id" if body.text_id is not None else "image_id"
    return {key: item_id, "tag_id": body.tag_id}


# listings


@router.post("/api/list_tag_predictions/")
async def list_tag_predictions(request: Request, tenant: Tenant, kashf: Service) -> dict[str, Any]:
    body = await parse(request, TagPredictions)
    rows = await kashf.tag_predictions(tenant, body.dataset, body.tag_id, media_base(request, body.dataset))
    return _listing(request, paged(rows, _page_of(request)))


async def _reports(request: Request, tenant: str, kashf: KashfService, notsure: bool) -> dict[str, Any]:
    body = await parse(request, TagReports)
    dataset = await kashf.tag_in(tenant, body.tag_id)
    rows = await kashf.tag_reports(
        tenant, body.tag_id, body.reported_positive, notsure, media_base(request, dataset.slug)
    )
    return _listing(request, paged(rows, _page_of(request)))


@router.post("/api/list_tag_reports/")
async def list_tag_reports(request: Request, tenant: Tenant, kashf: Service) -> dict[str, Any]:
    return await _reports(request, tenant, kashf, notsure=False)


@router.post("/api/list_tag_notsure_reports/")
async def list_tag_notsure_reports(request: Request, tenant: Tenant, kashf: Service) -> dict[str, Any]:
    return await _reports(request, tenant, kashf, notsure=True)


async def _list_items(
    request: Request, tenant: str, kashf: KashfService, kind: DatasetType
) -> dict[str, Any]:
    body = await parse(request, ListItems)
    _check_count(_deps(request).settings.kashf_max_inputs, len(body.ids), "ids")
    items = await kashf.items(tenant, body.dataset, body.ids, kind)
    base = media_base(request, body.dataset)
    return {"count": len(items), "results": [render_item(item, kind, base) for item in items]}


@router.post("/api/list_texts/")
async def list_texts(request: Request, tenant: Tenant, kashf: Service) -> dict[str, Any]:
    return await _list_items(request, tenant, kashf, DatasetType.TEXT)


@router.post("/api/list_images/")
async def list_images(request: Request, tenant: Tenant, kashf: Service) -> dict[str, Any]:
    return await _list_items(request, tenant, kashf, DatasetType.IMAGE)


async def _search(request: Request, tenant: str, kashf: KashfService, default_reported: bool | None) -> Any:
    body = await parse(request, Search)
    reported = body.reported if "reported" in body.model_fields_set else default_reported
    dataset, items = await kashf.search(tenant, body.dataset, body.query, reported, body.tag_id)
    base = media_base(request, body.dataset)
    rows = [next(iter(render_item(item, dataset.type, base).values())) for item in items]
    return dataset, _listing(request, paged(rows, _page_of(request)))


@router.post("/api/search_candidate_texts/")
async def search_candidate_texts(request: Request, tenant: Tenant, kashf: Service) -> dict[str, Any]:
    # the document: reported=false (the default) searches the unreported texts
    _, listing = await _search(request, tenant, kashf, default_reported=False)
    return dict(listing)


@router.post("/api/search_candidate_images/")
async def search_candidate_images(request: Request, tenant: Tenant, kashf: Service) -> dict[str, Any]:
    _, listing = await _search(request, tenant, kashf, default_reported=None)
    return dict(listing)


@router.post("/api/search_candidate_faces/")
async def search_candidate_faces(request: Request, tenant: Tenant, kashf: Service) -> dict[str, Any]:
    _, listing = await _search(request, tenant, kashf, default_reported=None)
    items = [
        {
            "id": row["id"],
            "url": row["url"],
            "width": None,
            "height": None,
            "data": row["data"],
            "processed": row["processed"],
        }
        for row in listing["results"]
    ]
    return {
        "items": items,
        "count": listing["count"],
        "next": listing["next"],
        "previous": listing["previous"],
    }


# training, retagging, export, import


def _state(dataset: Dataset) -> dict[str, Any]:
    return {"dataset": dataset.slug, "state": dataset.state.value}


@router.post("/api/train_dataset/")
async def train_dataset(request: Request, tenant: Tenant, kashf: Service) -> dict[str, Any]:
    body = await parse(request, Train)
    return _state(await kashf.train(tenant, body.dataset))


@router.post("/api/retag_dataset/")
async def retag_dataset(request: Request, tenant: Tenant, kashf: Service) -> dict[str, Any]:
    body = await parse(request, Retag)
    return _state(await kashf.retag(tenant, body.dataset, body.max_predictions))


def _operation_row(request: Request, operation: DatasetExport | DatasetImport) -> dict[str, Any]:
    base = str(request.base_url).rstrip("/") + f"/api/dataset_operations/{operation.dataset}/{operation.id}/"
    row: dict[str, Any] = {
        "dataset": operation.dataset,
        "id": operation.id,
        "kind": operation.kind,
        "state": operation.state.value,
        "status_url": base,
    }
    done = operation.state == RunState.DONE
    if isinstance(operation, DatasetExport):
        row["file_url"] = base + "file/"
        if done:
            row["rows"] = operation.rows
    elif done:
        row.update(operation.outcome.model_dump(mode="json"))
    if operation.state == RunState.FAILED:
        row["failure_reason"] = operation.failure_reason
    return row


@router.post("/api/export_dataset/")
async def export_dataset(request: Request, tenant: Tenant, kashf: Service) -> dict[str, Any]:
    body = await parse(request, Export)
    params = ExportParams(original_urls=body.original_urls, tag_names=body.tag_names)
    return _operation_row(
        request, await kashf.export(tenant, body.dataset, params, media_base(request, body.dataset))
    )


@router.post("/api/import_dataset/")
async def import_dataset(request: Request, tenant: Tenant, kashf: Service) -> dict[str, Any]:
    deps = _deps(request)
    data = b""
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        form = await request.form()
        files = [value for _, value in form.multi_items() if isinstance(value, UploadFile)]
        if files:
            limit = deps.settings.max_audio_bytes
            data = await files[0].read(limit + 1)
            if len(data) > limit:
                raise PayloadTooLarge(f"{files[0].filename} is larger than {limit} bytes")
    body = await parse(request, Import)
    if not data:
        if not body.csv_url:
            raise BadRequest("send csv_url or the CSV file as multipart/form-data")
        with tempfile.TemporaryDirectory(prefix="shenava-csv-") as directory:
            target = Path(directory) / "import.csv"
            await fetch_file(body.csv_url, target, FetchLimits.from_settings(deps.settings))
            data = target.read_bytes()
    params = ImportParams(report_items=body.report_items, tag_names=body.tag_names)
    return _operation_row(request, await kashf.import_csv(tenant, body.dataset, data, params))


@router.get("/api/dataset_operations/{slug}/{run_id}/")
async def dataset_operation(request: Request, slug: str, run_id: str, tenant: Tenant, kashf: Service) -> Any:
    return _operation_row(request, await kashf.operation(tenant, slug, run_id))


@router.get("/api/dataset_operations/{slug}/{run_id}/file/")
async def dataset_operation_file(
    request: Request, slug: str, run_id: str, tenant: Tenant, kashf: Service
) -> Any:
    operation = await kashf.operation(tenant, slug, run_id)
    if not isinstance(operation, DatasetExport):
        raise NotFound(f"{run_id} is an import; it has no file")
    if operation.state != RunState.DONE:
        return JSONResponse(status_code=202, content=_operation_row(request, operation))
    data = await _media_bytes(_deps(request), operation.file_key)
    return Response(
        data,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{slug}-{run_id}.csv"'},
    )


@router.get("/api/dataset_media/{slug}/{item_id}/")
async def dataset_media(
    slug: str, item_id: int, tenant: Tenant, kashf: Service, request: Request
) -> Response:
    found = await kashf.items(tenant, slug, [item_id], DatasetType.IMAGE)
    if not found or not found[0].media_key:
        raise NotFound(f"dataset {slug!r} has no image {item_id}")
    data = await _media_bytes(_deps(request), found[0].media_key)
    return Response(data, media_type=check_image(data, "the stored image").content_type)


async def _media_bytes(deps: Deps, key: str) -> bytes:
    try:
        return await read_bytes(deps.media, key)
    except FileNotFoundError as exc:
        raise NotFound("the file is no longer stored") from exc


# tagging


def frame_clock(seconds: float) -> str:
    """H:MM:SS, truncated to the whole second, as the Kashf documents show times ("0:01:23")."""
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"seconds must be a finite number >= 0, got {seconds}")
    whole = int(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


UNKNOWN_FACE = {"id": 0, "probability": 1.0, "title": "ناآشنا"}  # a face no tag recognises


def _tags(found: tuple[TagScore, ...], titles: dict[int, str], unknown: bool) -> list[dict[str, Any]]:
    """Tags the dataset still has, most probable first; ``unknown``: the unknown face when none."""
    tags: list[dict[str, Any]] = [
        {"id": tag.tag_id, "probability": round(tag.probability, 2), "title": titles[tag.tag_id]}
        for tag in found
        if tag.tag_id in titles
    ]
    tags.sort(key=lambda tag: -tag["probability"])
    return tags or ([dict(UNKNOWN_FACE)] if unknown else [])


def render_tagged(dataset: Dataset, request: TaggingRequest) -> list[dict[str, Any]]:
    assert request.results is not None
    titles = {tag.id: tag.title for tag in dataset.tags.values()}
    faces = dataset.type == DatasetType.FACE
    answers: list[dict[str, Any]] = []
    for entry, found in zip(request.inputs, request.results, strict=True):
        if isinstance(entry, TextInput):
            answers.append({"content": entry.content, "tags": _tags(found.tags, titles, False)})
        elif request.kind == TaggingKind.VIDEOS:
            tags = _tags(found.tags, titles, False)
            answers.append({"image_url": entry.url, "video_url": entry.url, "tags": tags})
        elif request.kind.is_video:
            frames = [
                {"frame": f.index, "time": frame_clock(f.seconds), "tags": _tags(f.tags, titles, faces)}
                for f in found.frames
            ]
            answers.append({"video_url": entry.url, "frames": frames})
        else:
            answers.append({"image_url": entry.url, "tags": _tags(found.tags, titles, faces)})
    return answers


async def _answer(
    request: Request,
    kashf: KashfService,
    tenant: str,
    found: tuple[Dataset, TaggingRequest],
    wait: bool,
) -> Any:
    dataset, doc = found
    if doc.state == RunState.PROCESSING and wait:
        latest = doc

        async def finished() -> bool:
            nonlocal latest
            latest = await kashf.request_doc(tenant, dataset.slug, doc.id)
            return latest.state.finished

        await kashf.deps.bus.wait(doc.id, finished, kashf.deps.settings.kashf_wait_timeout_s)
        doc = latest
    if doc.state == RunState.DONE:
        return render_tagged(dataset, doc)
    if doc.state == RunState.FAILED:
        raise failed_request(doc)
    return {"state": "processing", "request_id": doc.id}


@router.post("/api/tag_texts/")
async def tag_texts(request: Request, tenant: Tenant, kashf: Service) -> Any:
    body = await parse(request, TagTexts)
    _check_count(_deps(request).settings.kashf_max_inputs, len(body.contents), "contents")

    async def inputs(_: Dataset) -> list[TaggingInput]:
        return [TextInput(content=content) for content in body.contents]

    found = await kashf.tagging(tenant, body.dataset, TaggingKind.TEXTS, body.contents, None, inputs)
    return await _answer(request, kashf, tenant, found, body.wait)


async def _tag_images(request: Request, tenant: str, kashf: KashfService, kind: TaggingKind) -> Any:
    deps = _deps(request)
    uploads: list[tuple[str, CheckedImage]] = []
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        form = await request.form()
        names = [
            value.filename or f"upload-{n}"
            for n, (_, value) in enumerate(form.multi_items())
            if isinstance(value, UploadFile)
        ]
        uploads = list(zip(names, await _uploaded_images(form, deps), strict=True))
    body = await parse(request, TagImages)
    if not body.image_urls and not uploads:
        raise BadRequest("send image_urls, or image files as multipart/form-data")
    _check_count(deps.settings.kashf_max_inputs, len(body.image_urls) + len(uploads), "images")
    identities = body.image_urls + [f"sha256:{image.sha256}" for _, image in uploads]

    async def inputs(dataset: Dataset) -> list[TaggingInput]:
        entries: list[TaggingInput] = []
        for url in body.image_urls:
            image = await _fetch_image(url, deps)
            entries.append(
                MediaInput(url=url, media_key=await kashf.store_image(tenant, dataset.slug, image))
            )
        for name, image in uploads:
            entries.append(
                MediaInput(url=name, media_key=await kashf.store_image(tenant, dataset.slug, image))
            )
        return entries

    found = await kashf.tagging(tenant, body.dataset, kind, identities, None, inputs)
    return await _answer(request, kashf, tenant, found, body.wait)


@router.post("/api/tag_images/")
async def tag_images(request: Request, tenant: Tenant, kashf: Service) -> Any:
    return await _tag_images(request, tenant, kashf, TaggingKind.IMAGES)


@router.post("/api/tag_faces/")
async def tag_faces(request: Request, tenant: Tenant, kashf: Service) -> Any:
    return await _tag_images(request, tenant, kashf, TaggingKind.FACES)


async def _tag_videos(request: Request, tenant: str, kashf: KashfService, kind: TaggingKind) -> Any:
    deps = _deps(request)
    body = await parse(request, TagVideos)
    _check_count(deps.settings.kashf_max_inputs, len(body.video_urls), "videos")
    videos_default = kind == TaggingKind.VIDEOS and "every_ms" not in body.model_fields_set
    sampling = VideoSampling(
        every_ms=1000 if videos_default else body.every_ms,
        min_frame_diff=body.min_frame_diff,
        duration=body.duration,
    )

    async def inputs(dataset: Dataset) -> list[TaggingInput]:
        entries: list[TaggingInput] = []
        for url in body.video_urls:
            with tempfile.TemporaryDirectory(prefix="shenava-video-") as directory:
                target = Path(directory) / "video"
                await fetch_file(url, target, FetchLimits.from_settings(deps.settings))
                await _check_video(target, url)
                data = target.read_bytes()
            key = f"kashf/{tenant}/{dataset.slug}/videos/{hashlib.sha256(data).hexdigest()}"
            await deps.media.put_bytes(key, data, "video/mp4")
            entries.append(MediaInput(url=url, media_key=key))
        return entries

    found = await kashf.tagging(tenant, body.dataset, kind, body.video_urls, sampling, inputs)
    return await _answer(request, kashf, tenant, found, body.wait)


async def _check_video(path: Path, url: str) -> None:
    if not await has_video_stream(path):
        raise NotAVideo(f"{url} is not a video with pictures")


@router.post("/api/tag_video_frames/")
async def tag_video_frames(request: Request, tenant: Tenant, kashf: Service) -> Any:
    return await _tag_videos(request, tenant, kashf, TaggingKind.VIDEO_FRAMES)


@router.post("/api/tag_video_faces/")
async def tag_video_faces(request: Request, tenant: Tenant, kashf: Service) -> Any:
    return await _tag_videos(request, tenant, kashf, TaggingKind.VIDEO_FACES)


@router.post("/api/tag_videos/")
async def tag_videos(request: Request, tenant: Tenant, kashf: Service) -> Any:
    return await _tag_videos(request, tenant, kashf, TaggingKind.VIDEOS)
