"""Kashf routes for datasets and tags: create, list, describe, train, retag; create, edit, delete tags."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from functions.api.kashf_render import (
    DatasetInfoAnswer,
    DatasetRow,
    DeletedTag,
    StateAnswer,
    TagRow,
    dataset_info,
    dataset_row,
    state_answer,
    tag_row,
)
from functions.api.kashf_requests import (
    CreateDataset,
    CreateTag,
    DatasetInfo,
    DatasetRef,
    Retag,
    Runs,
    Service,
    TagRef,
    Tenant,
    UpdateTag,
    documented,
    json_or_form,
)
from functions.common.datasets import DatasetType
from functions.common.errors import BadRequest

router = APIRouter(tags=["Kashf"])


def dataset_type(raw: str) -> DatasetType:
    """``text``, ``image`` or ``face``, also as ``list_datasets`` names them (``image-tag``)."""
    try:
        return DatasetType(raw.strip().lower().removesuffix("-tag"))
    except ValueError as exc:
        raise BadRequest(f"type must be text, image or face, not {raw!r}") from exc


@router.post("/api/create_dataset/", status_code=201, openapi_extra=documented(CreateDataset))
async def create_dataset(
    tenant: Tenant, kashf: Service, body: Annotated[CreateDataset, json_or_form(CreateDataset)]
) -> DatasetRow:
    kind = dataset_type(body.type)
    dataset = await kashf.create_dataset(tenant, slug=body.slug, title=body.title or body.slug, kind=kind)
    return dataset_row(dataset, report_count=0)


@router.get("/api/list_datasets/")
async def list_datasets(tenant: Tenant, kashf: Service) -> list[DatasetRow]:
    return [
        dataset_row(dataset, await kashf.report_count(tenant, dataset.slug))
        for dataset in await kashf.datasets(tenant)
    ]


@router.post("/dataset_info/", response_model_exclude_unset=True, openapi_extra=documented(DatasetInfo))
@router.post("/api/dataset_info/", response_model_exclude_unset=True, openapi_extra=documented(DatasetInfo))
async def describe_dataset(
    tenant: Tenant, kashf: Service, body: Annotated[DatasetInfo, json_or_form(DatasetInfo)]
) -> DatasetInfoAnswer:
    return dataset_info(await kashf.view(tenant, body.dataset), with_tags=body.tags)


@router.post("/api/create_tag/", status_code=201, openapi_extra=documented(CreateTag))
async def create_tag(
    tenant: Tenant, kashf: Service, body: Annotated[CreateTag, json_or_form(CreateTag)]
) -> TagRow:
    tag = await kashf.create_tag(tenant, slug=body.dataset, title=body.title, active=body.active)
    return tag_row(tag)


@router.post("/api/update_tag/", openapi_extra=documented(UpdateTag))
async def update_tag(
    tenant: Tenant, kashf: Service, body: Annotated[UpdateTag, json_or_form(UpdateTag)]
) -> TagRow:
    tag = await kashf.update_tag(
        tenant, slug=body.dataset, tag_id=body.tag_id, title=body.title, active=body.active
    )
    return tag_row(tag)


@router.post("/api/delete_tag/", openapi_extra=documented(TagRef))
async def delete_tag(
    tenant: Tenant, kashf: Service, body: Annotated[TagRef, json_or_form(TagRef)]
) -> DeletedTag:
    dataset, deleted = await kashf.delete_tag(tenant, body.tag_id)
    return DeletedTag(dataset=dataset.slug, deleted_reports=deleted)


@router.post("/api/train_dataset/", openapi_extra=documented(DatasetRef))
async def train_dataset(
    tenant: Tenant, runs: Runs, body: Annotated[DatasetRef, json_or_form(DatasetRef)]
) -> StateAnswer:
    return state_answer(await runs.train(tenant, body.dataset))


@router.post("/api/retag_dataset/", openapi_extra=documented(Retag))
async def retag_dataset(
    tenant: Tenant, runs: Runs, body: Annotated[Retag, json_or_form(Retag)]
) -> StateAnswer:
    dataset = await runs.retag(tenant, slug=body.dataset, max_predictions=body.max_predictions)
    return state_answer(dataset)
