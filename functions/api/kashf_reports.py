"""Kashf routes for reports and what they label: report texts and images, remove a report, and the
listings — a tag's reports, its "not sure" reports and predictions, items by id, searches."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request

from functions.api.kashf_render import (
    FaceListing,
    ImageItem,
    ImageRow,
    Items,
    Listing,
    PredictedImage,
    PredictedText,
    RemovedReport,
    ReportAnswer,
    ReportedImageRow,
    ReportedTextRow,
    TextItem,
    TextRow,
    face_row,
    item,
    item_row,
    listing,
    media_base,
    predicted_row,
    report_answer,
    reported_row,
)
from functions.api.kashf_requests import (
    ImageReport,
    ListItems,
    RemoveReport,
    ReportFields,
    Search,
    Service,
    TagPredictions,
    TagReports,
    Tenant,
    TextReport,
    check_count,
    documented,
    fields,
    json_or_form,
    page_number,
    uploaded_images,
    validated,
)
from functions.api.kashf_service import ImageLabel, ImageUrlLabel, KashfService, TextLabel
from functions.common.datasets import DatasetType
from functions.common.errors import BadRequest

router = APIRouter(tags=["Kashf"])


async def report_list(request: Request) -> list[object]:
    """The body's reports (a JSON list, or one report), each still to validate."""
    data = await fields(request)
    entries = data if isinstance(data, list) else [data]
    check_count(request, len(entries), "reports")
    if not entries:
        raise BadRequest("send at least one report")
    return entries


@router.post("/api/report_text_tags/", openapi_extra=documented(TextReport, many=True))
async def report_text_tags(request: Request, tenant: Tenant, kashf: Service) -> list[ReportAnswer]:
    reports = [validated(TextReport, entry) for entry in await report_list(request)]
    labels = [TextLabel(tag_id=r.tag_id, positive=r.positive, content=r.content) for r in reports]
    return [report_answer(reported) for reported in await kashf.report_texts(tenant, labels)]


@router.post("/api/report_image_tags/", openapi_extra=documented(ImageReport, many=True, files=("image",)))
async def report_image_tags(request: Request, tenant: Tenant, kashf: Service) -> list[ReportAnswer]:
    """Images by URL (JSON), or uploaded files with ``tag_id`` and ``positive`` (multipart)."""
    uploads = await uploaded_images(request)
    if uploads:
        label = validated(ReportFields, await fields(request))
        labels = [
            ImageLabel(tag_id=label.tag_id, positive=label.positive, image=u.image, url="") for u in uploads
        ]
        reported = await kashf.report_images(tenant, labels)
    elif request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise BadRequest("send the image as a multipart file (or JSON with image_url)")
    else:
        reports = [validated(ImageReport, entry) for entry in await report_list(request)]
        by_url = [ImageUrlLabel(tag_id=r.tag_id, positive=r.positive, url=r.image_url) for r in reports]
        reported = await kashf.report_image_urls(tenant, by_url)
    return [report_answer(one) for one in reported]


@router.post(
    "/api/remove_tag_report/", response_model_exclude_none=True, openapi_extra=documented(RemoveReport)
)
async def remove_tag_report(
    tenant: Tenant, kashf: Service, body: Annotated[RemoveReport, json_or_form(RemoveReport)]
) -> RemovedReport:
    item_id = body.text_id if body.text_id is not None else body.image_id
    if item_id is None:
        raise BadRequest("send text_id or image_id with tag_id")
    await kashf.remove_report(tenant, item_id=item_id, tag_id=body.tag_id)
    if body.text_id is not None:
        return RemovedReport(text_id=item_id, tag_id=body.tag_id)
    return RemovedReport(image_id=item_id, tag_id=body.tag_id)


@router.post("/api/list_tag_predictions/", openapi_extra=documented(TagPredictions))
async def list_tag_predictions(
    request: Request,
    tenant: Tenant,
    kashf: Service,
    body: Annotated[TagPredictions, json_or_form(TagPredictions)],
) -> Listing[PredictedText | PredictedImage]:
    dataset, predicted = await kashf.tag_predictions(tenant, slug=body.dataset, tag_id=body.tag_id)
    base = media_base(request, body.dataset)
    rows = [predicted_row(found, dataset.type, base) for found in predicted]
    return listing(request, rows, page_number(request))


async def _reports(
    request: Request, tenant: str, kashf: KashfService, body: TagReports, notsure: bool
) -> Listing[ReportedTextRow | ReportedImageRow]:
    dataset, found = await kashf.tag_reports(
        tenant, tag_id=body.tag_id, positive=body.reported_positive, notsure=notsure
    )
    base = media_base(request, dataset.slug)
    rows = [reported_row(one, label, body.tag_id, dataset.type, base) for one, label in found]
    return listing(request, rows, page_number(request))


@router.post("/api/list_tag_reports/", openapi_extra=documented(TagReports))
async def list_tag_reports(
    request: Request, tenant: Tenant, kashf: Service, body: Annotated[TagReports, json_or_form(TagReports)]
) -> Listing[ReportedTextRow | ReportedImageRow]:
    return await _reports(request, tenant, kashf, body, notsure=False)


@router.post("/api/list_tag_notsure_reports/", openapi_extra=documented(TagReports))
async def list_tag_notsure_reports(
    request: Request, tenant: Tenant, kashf: Service, body: Annotated[TagReports, json_or_form(TagReports)]
) -> Listing[ReportedTextRow | ReportedImageRow]:
    return await _reports(request, tenant, kashf, body, notsure=True)


async def _list_items(
    request: Request, tenant: str, kashf: KashfService, body: ListItems, kind: DatasetType
) -> Items[TextRow | ImageRow]:
    check_count(request, len(body.ids), "ids")
    found = await kashf.items(tenant, slug=body.dataset, ids=body.ids, kind=kind)
    base = media_base(request, body.dataset)
    return Items[TextRow | ImageRow](count=len(found), results=[item_row(one, kind, base) for one in found])


@router.post("/api/list_texts/", openapi_extra=documented(ListItems))
async def list_texts(
    request: Request, tenant: Tenant, kashf: Service, body: Annotated[ListItems, json_or_form(ListItems)]
) -> Items[TextRow | ImageRow]:
    return await _list_items(request, tenant, kashf, body, DatasetType.TEXT)


@router.post("/api/list_images/", openapi_extra=documented(ListItems))
async def list_images(
    request: Request, tenant: Tenant, kashf: Service, body: Annotated[ListItems, json_or_form(ListItems)]
) -> Items[TextRow | ImageRow]:
    return await _list_items(request, tenant, kashf, body, DatasetType.IMAGE)


async def _search(
    request: Request, tenant: str, kashf: KashfService, body: Search, reported: bool | None
) -> Listing[TextItem | ImageItem]:
    dataset, found = await kashf.search(
        tenant, slug=body.dataset, query=body.query, reported=reported, tag_id=body.tag_id
    )
    base = media_base(request, body.dataset)
    return listing(request, [item(one, dataset.type, base) for one in found], page_number(request))


@router.post("/api/search_candidate_texts/", openapi_extra=documented(Search))
async def search_candidate_texts(
    request: Request, tenant: Tenant, kashf: Service, body: Annotated[Search, json_or_form(Search)]
) -> Listing[TextItem | ImageItem]:
    # the document: reported=false (the default) searches the unreported texts
    reported = body.reported if "reported" in body.model_fields_set else False
    return await _search(request, tenant, kashf, body, reported)


@router.post("/api/search_candidate_images/", openapi_extra=documented(Search))
async def search_candidate_images(
    request: Request, tenant: Tenant, kashf: Service, body: Annotated[Search, json_or_form(Search)]
) -> Listing[TextItem | ImageItem]:
    return await _search(request, tenant, kashf, body, body.reported)


@router.post("/api/search_candidate_faces/", openapi_extra=documented(Search))
async def search_candidate_faces(
    request: Request, tenant: Tenant, kashf: Service, body: Annotated[Search, json_or_form(Search)]
) -> FaceListing:
    _, found = await kashf.search(
        tenant, slug=body.dataset, query=body.query, reported=body.reported, tag_id=body.tag_id
    )
    base = media_base(request, body.dataset)
    page = listing(request, [face_row(one, base) for one in found], page_number(request))
    return FaceListing(items=page.results, count=page.count, next=page.next, previous=page.previous)
