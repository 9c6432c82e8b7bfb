"""Kashf routes for files: export and import a dataset as CSV, follow the operation, fetch the
exported CSV, and a dataset image's stored copy."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from functions.api.kashf_render import OperationAnswer, media_base, operation_answer
from functions.api.kashf_requests import (
    Export,
    Import,
    Runs,
    Service,
    Tenant,
    documented,
    fields,
    json_or_form,
    uploaded_file,
    validated,
)
from functions.common.dataset_runs import DatasetExport, ExportParams, ImportParams, RunState
from functions.common.errors import BadRequest, NotFound

router = APIRouter(tags=["Kashf"])


@router.post("/api/export_dataset/", response_model_exclude_none=True, openapi_extra=documented(Export))
async def export_dataset(
    request: Request, tenant: Tenant, runs: Runs, body: Annotated[Export, json_or_form(Export)]
) -> OperationAnswer:
    params = ExportParams(original_urls=body.original_urls, tag_names=body.tag_names)
    operation = await runs.export(
        tenant, slug=body.dataset, params=params, media_base=media_base(request, body.dataset)
    )
    return operation_answer(request, operation)


@router.post(
    "/api/import_dataset/",
    response_model_exclude_none=True,
    openapi_extra=documented(Import, files=("file",)),
)
async def import_dataset(request: Request, tenant: Tenant, runs: Runs) -> OperationAnswer:
    """The CSV as a multipart file, or at ``csv_url``."""
    data = await uploaded_file(request)
    body = validated(Import, await fields(request))
    if not data and not body.csv_url:
        raise BadRequest("send csv_url or the CSV file as multipart/form-data")
    params = ImportParams(report_items=body.report_items, tag_names=body.tag_names)
    operation = await runs.import_csv(
        tenant, slug=body.dataset, params=params, data=data or None, csv_url=body.csv_url
    )
    return operation_answer(request, operation)


@router.get("/api/dataset_operations/{slug}/{run_id}/", response_model_exclude_none=True)
async def dataset_operation(
    request: Request, slug: str, run_id: str, tenant: Tenant, runs: Runs
) -> OperationAnswer:
    return operation_answer(request, await runs.operation(tenant, slug=slug, run_id=run_id))


@router.get("/api/dataset_operations/{slug}/{run_id}/file/", response_model=None)
async def dataset_operation_file(
    request: Request, slug: str, run_id: str, tenant: Tenant, runs: Runs
) -> Response:
    """The export's CSV once it is done (202 with the operation before)."""
    operation = await runs.operation(tenant, slug=slug, run_id=run_id)
    if not isinstance(operation, DatasetExport):
        raise NotFound(f"{run_id} is an import; it has no file")
    if operation.state != RunState.DONE:
        waiting = operation_answer(request, operation).model_dump(mode="json", exclude_none=True)
        return JSONResponse(status_code=202, content=waiting)
    return Response(
        await runs.exported(operation),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{slug}-{run_id}.csv"'},
    )


@router.get("/api/dataset_media/{slug}/{item_id}/", response_model=None)
async def dataset_media(slug: str, item_id: int, tenant: Tenant, kashf: Service) -> Response:
    image = await kashf.image(tenant, slug=slug, item_id=item_id)
    if image is None:
        raise NotFound(f"dataset {slug!r} has no image {item_id}")
    return Response(image.data, media_type=image.content_type)
