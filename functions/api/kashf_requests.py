"""What a Kashf request brings: the caller's tenant, the services, and its body.

Kashf's clients send a JSON body or form fields (``multipart/form-data`` when files come along)
to the same endpoint, so bodies are read here rather than by FastAPI: ``json_or_form(Model)`` is a
dependency that validates either into ``Model`` (400 naming the first problems), and
``documented(Model)`` puts the same model in ``/openapi.json`` for all three content types.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from starlette.datastructures import UploadFile

from functions.api.auth import caller_tenant
from functions.api.kashf_media import NamedImage
from functions.api.kashf_runs import KashfRuns
from functions.api.kashf_service import KashfService
from functions.common.bootstrap import Deps
from functions.common.errors import BadRequest, PayloadTooLarge
from functions.common.images import check_image

MAX_JSON_BYTES = 8 * 1024 * 1024
FORMS = ("multipart/form-data", "application/x-www-form-urlencoded")
M = TypeVar("M", bound=BaseModel)


def deps_of(request: Request) -> Deps:
    deps: Deps = request.app.state.deps
    return deps


def _service(request: Request) -> KashfService:
    return KashfService(deps_of(request))


def _runs(request: Request) -> KashfRuns:
    return KashfRuns(deps_of(request))


Tenant = Annotated[str, Depends(caller_tenant)]
Service = Annotated[KashfService, Depends(_service)]
Runs = Annotated[KashfRuns, Depends(_runs)]


# bodies


class Body(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class CreateDataset(Body):
    slug: str
    title: str = ""
    type: str = Field(default="text", description="text, image or face (also text-tag, image-tag, face-tag)")


class DatasetRef(Body):
    dataset: str = Field(description="the dataset's slug")


class DatasetInfo(DatasetRef):
    tags: bool = True


class CreateTag(DatasetRef):
    title: str = Field(min_length=1, max_length=200)
    active: bool = True


class UpdateTag(CreateTag):
    tag_id: int


class TagRef(Body):
    tag_id: int


class ReportFields(Body):
    """The fields beside an uploaded image (``report_image_tags`` as multipart/form-data)."""

    tag_id: int
    positive: bool = True


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
    """The ids under any of the names the document uses: ``text_ids`` (list_texts, and list_images'
    sample), ``images_ids`` (list_images' parameter) or ``image_ids``; each is in the schema."""

    text_ids: list[int] | None = None
    images_ids: list[int] | None = None
    image_ids: list[int] | None = None

    @model_validator(mode="after")
    def _some_ids(self) -> ListItems:
        if self.text_ids is None and self.images_ids is None and self.image_ids is None:
            raise ValueError("send text_ids (or images_ids) with the dataset")
        return self

    @property
    def ids(self) -> list[int]:
        return next(ids for ids in (self.text_ids, self.images_ids, self.image_ids) if ids is not None)


class Search(DatasetRef):
    query: str
    reported: bool | None = None
    tag_id: int | None = None


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
    tree_based: bool = False  # accepted, not used: training chooses trees or a linear model per dataset


class TagImages(DatasetRef):
    image_urls: list[str] = Field(default_factory=list)
    wait: bool = True


class TagVideos(DatasetRef):
    video_urls: list[str] = Field(min_length=1)
    every_ms: int = Field(default=100, gt=0, description="tag_videos: 1000 when not given")
    min_frame_diff: float = Field(default=0.4, ge=0.0, le=1.0)
    duration: float | None = Field(
        default=None, ge=0, description="seconds from the start; 0 (the document's default) or null: all"
    )
    wait: bool = True


# reading bodies


def json_or_form(model: type[M]) -> Any:
    """A dependency: the request's JSON body, or its form fields, validated into ``model``."""

    async def parsed(request: Request) -> M:
        return validated(model, await fields(request))

    return Depends(parsed)


def validated(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise BadRequest(problems(exc)) from exc


async def fields(request: Request) -> Any:
    if is_form(request):
        form = await request.form()
        return {key: _form_value(value) for key, value in form.items() if not isinstance(value, UploadFile)}
    raw = await request.body()
    if len(raw) > MAX_JSON_BYTES:
        raise PayloadTooLarge(f"the JSON body is larger than {MAX_JSON_BYTES} bytes")
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise BadRequest(
            f"the body is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from exc


def is_form(request: Request, kinds: tuple[str, ...] = FORMS) -> bool:
    return request.headers.get("content-type", "").startswith(kinds)


def _form_value(value: str) -> Any:
    """Form fields are text: ``true``/``false`` are booleans and ``[…]`` a JSON list, as in JSON."""
    lowered = value.strip().lower()
    if lowered in {"true", "false"}:
        return lowered == "true"
    if value.strip().startswith("["):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def problems(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:3]:
        where = ".".join(str(p) for p in error.get("loc", ()))
        parts.append(f"{where or 'body'}: {error.get('msg', 'invalid')}")
    return "; ".join(parts)


def check_count(request: Request, count: int, what: str) -> None:
    limit = deps_of(request).settings.kashf_max_inputs
    if count > limit:
        raise BadRequest(f"at most {limit} {what} in one request, not {count}")


def page_number(request: Request) -> int:
    raw = request.query_params.get("page", "1")
    if not raw.isdigit():
        raise BadRequest(f"page must be a positive integer, not {raw!r}")
    return int(raw)


async def uploaded_images(request: Request) -> list[NamedImage]:
    """The image files of a multipart body, each checked to be an image (none for other bodies)."""
    if not is_form(request, ("multipart/form-data",)):
        return []
    limit = deps_of(request).settings.kashf_max_image_bytes
    uploads = [value for _, value in (await request.form()).multi_items() if isinstance(value, UploadFile)]
    check_count(request, len(uploads), "images")
    images = []
    for n, upload in enumerate(uploads):
        data = await upload.read(limit + 1)
        if len(data) > limit:
            raise PayloadTooLarge(f"{upload.filename} is larger than {limit} bytes")
        name = upload.filename or f"upload-{n}"
        images.append(NamedImage(name, check_image(data, upload.filename or "the uploaded file")))
    return images


async def uploaded_file(request: Request) -> bytes | None:
    """The first file of a multipart body, or None."""
    if not is_form(request, ("multipart/form-data",)):
        return None
    limit = deps_of(request).settings.max_audio_bytes
    for _, value in (await request.form()).multi_items():
        if isinstance(value, UploadFile):
            data = await value.read(limit + 1)
            if len(data) > limit:
                raise PayloadTooLarge(f"{value.filename} is larger than {limit} bytes")
            return data
    return None


# documenting bodies


def documented(model: type[BaseModel], *, many: bool = False, files: tuple[str, ...] = ()) -> dict[str, Any]:
    """``openapi_extra`` for a route reading ``model``: as JSON (or a JSON list with ``many``), as a
    form, and as multipart with ``files`` as file fields."""
    schema = _inline(model.model_json_schema())
    as_json = {"anyOf": [schema, {"type": "array", "items": schema}]} if many else schema
    binary = {name: {"type": "string", "format": "binary"} for name in files}
    multipart = {**schema, "properties": {**schema.get("properties", {}), **binary}}
    content = {
        "application/json": {"schema": as_json},
        "application/x-www-form-urlencoded": {"schema": schema},
        "multipart/form-data": {"schema": multipart},
    }
    return {"requestBody": {"required": True, "content": content}}


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with its ``$defs`` references replaced by the definitions (route schemas stand alone)."""
    definitions = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return resolve(definitions[ref.removeprefix("#/$defs/")])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(value) for value in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved
