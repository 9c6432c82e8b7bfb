"""Kashf's core: datasets, tags, reports, listings and requests to the train function.

The router (``kashf.py``) parses and renders; everything here works on the tenant's datasets
through ``DatasetRepository``. Training, retagging, export, import and tagging never run here:
they are events for the train function. Tagging requests are named by a hash of what they ask
(dataset version, kind, inputs, parameters), so an identical call finds the earlier request and
answers its result once it is ready.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

from events.models import (
    DatasetEvent,
    DatasetExportRequested,
    DatasetImportRequested,
    DatasetRetagRequested,
    DatasetTrainRequested,
    TaggingRequested,
)
from functions.common.bootstrap import Deps
from functions.common.dataset_errors import (
    DatasetBusy,
    EmptyQuery,
    NothingToTrain,
    NotTrained,
    OperationNotFound,
    ReportNotFound,
    TaggingRequestGone,
    TagOfAnotherDataset,
    TagTitleTaken,
    WrongDatasetType,
)
from functions.common.dataset_runs import (
    DatasetExport,
    DatasetImport,
    ExportParams,
    ImportParams,
    Predictions,
    RunDocuments,
    RunState,
    TaggingInput,
    TaggingKind,
    TaggingRequest,
    VideoSampling,
)
from functions.common.datasets import (
    Dataset,
    DatasetRepository,
    DatasetState,
    DatasetType,
    Item,
    NewReport,
    Tag,
    check_slug,
    identity_of_image,
    identity_of_text,
    image_key,
    media_prefix,
)
from functions.common.images import CheckedImage
from functions.common.jobs import new_job_id

Publish = Callable[[DatasetEvent], Awaitable[None]]


def render_item(item: Item, kind: DatasetType, media_base: str) -> dict[str, Any]:
    data = {
        "reports": [
            {"tag_id": int(tag_id), "positive": positive} for tag_id, positive in item.reports.items()
        ]
    }
    processed = item.processed.isoformat() if item.processed else None
    if kind == DatasetType.TEXT:
        return {"text": {"id": item.id, "content": item.content, "data": data, "processed": processed}}
    return {
        "image": {
            "id": item.id,
            "url": item.url or f"{media_base}{item.id}/",
            "media_url": f"{media_base}{item.id}/",
            "data": data,
            "processed": processed,
        }
    }


def request_id(
    tenant: str, dataset: Dataset, kind: TaggingKind, identities: list[str], sampling: VideoSampling | None
) -> str:
    """The name of a tagging request: a hash of what it asks (as earlier versions named them)."""
    params = sampling.model_dump() if sampling is not None else {}
    body = json.dumps(
        [tenant, dataset.slug, dataset.version, kind.value, identities, params], ensure_ascii=False
    )
    return hashlib.sha256(body.encode()).hexdigest()[:32]


class KashfService:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.repo = DatasetRepository(deps.state)
        self.runs = RunDocuments(deps.state)

    async def publish(self, event: DatasetEvent) -> None:
        await self.deps.bus.publish(event)

    # datasets

    async def create_dataset(self, tenant: str, slug: str, title: str, kind: DatasetType) -> Dataset:
        dataset = Dataset(slug=check_slug(slug), title=title, type=kind, created_at=self.deps.clock())
        await self.repo.create(tenant, dataset)
        return dataset

    async def dataset(self, tenant: str, slug: str) -> Dataset:
        return await self.repo.get(tenant, slug)

    async def datasets(self, tenant: str) -> list[Dataset]:
        return sorted(await self.repo.all(tenant), key=lambda d: d.created_at)

    async def info(self, tenant: str, slug: str) -> tuple[Dataset, list[Item], Predictions]:
        dataset = await self.repo.get(tenant, slug)
        items = await self.repo.items(tenant, slug)
        predictions = await self._predictions(tenant, dataset)
        return dataset, items, predictions

    async def report_count(self, tenant: str, slug: str) -> int:
        return sum(len(item.reports) for item in await self.repo.items(tenant, slug))

    async def _predictions(self, tenant: str, dataset: Dataset) -> Predictions:
        return await self.runs.predictions(tenant, dataset.slug, dataset.version)

    # tags

    async def create_tag(self, tenant: str, slug: str, title: str, active: bool) -> Tag:
        dataset = await self.repo.get(tenant, slug)
        if any(tag.title == title for tag in dataset.tags.values()):
            raise TagTitleTaken(f"dataset {slug!r} already has a tag titled {title!r}")
        return await self.repo.add_tag(tenant, slug, title, active)

    async def update_tag(self, tenant: str, slug: str, tag_id: int, title: str, active: bool) -> Tag:
        dataset = await self.tag_in(tenant, tag_id, slug)
        if any(tag.title == title and tag.id != tag_id for tag in dataset.tags.values()):
            raise TagTitleTaken(f"dataset {slug!r} already has a tag titled {title!r}")

        def edit(current: Dataset) -> Dataset:
            tag = current.tag(tag_id)
            tag.title, tag.active = title, active
            return current

        return (await self.repo.change(tenant, dataset.slug, edit)).tag(tag_id)

    async def delete_tag(self, tenant: str, tag_id: int) -> tuple[str, int]:
        dataset = await self.repo.dataset_of_tag(tenant, tag_id)
        return dataset.slug, await self.repo.remove_tag(tenant, dataset.slug, tag_id)

    async def tag_in(self, tenant: str, tag_id: int, slug: str | None = None) -> Dataset:
        """The dataset of ``tag_id``: 404 if no such tag, 400 if it is another dataset's than ``slug``."""
        dataset = await self.repo.dataset_of_tag(tenant, tag_id)
        if slug is not None and dataset.slug != slug:
            await self.repo.get(tenant, slug)  # 404 for an unknown dataset first
            raise TagOfAnotherDataset(f"tag {tag_id} belongs to dataset {dataset.slug!r}, not {slug!r}")
        return dataset

    # reports

    async def report_texts(self, tenant: str, reports: list[tuple[str, int, bool]]) -> list[dict[str, Any]]:
        grouped = await self._group_by_dataset(tenant, [tag_id for _, tag_id, _ in reports], DatasetType.TEXT)
        answers: list[dict[str, Any]] = [{} for _ in reports]
        for slug, positions in grouped.items():
            new = [
                NewReport(
                    identity=identity_of_text(reports[n][0]),
                    tag_id=reports[n][1],
                    positive=reports[n][2],
                    content=reports[n][0],
                )
                for n in positions
            ]
            ids = await self.repo.add_items(tenant, slug, new, self.deps.clock())
            for n, item_id in zip(positions, ids, strict=True):
                answers[n] = {"report": json.dumps([[reports[n][1], reports[n][2]]]), "id": item_id}
        return answers

    async def report_images(
        self, tenant: str, reports: list[tuple[CheckedImage, str, int, bool]]
    ) -> list[dict[str, Any]]:
        """``reports``: (image, its URL or "" for an upload, tag id, positive)."""
        kinds = (DatasetType.IMAGE, DatasetType.FACE)
        grouped = await self._group_by_dataset(tenant, [tag_id for _, _, tag_id, _ in reports], *kinds)
        answers: list[dict[str, Any]] = [{} for _ in reports]
        for slug, positions in grouped.items():
            new = []
            for n in positions:
                image, url, tag_id, positive = reports[n]
                media_key = await self.store_image(tenant, slug, image)
                new.append(
                    NewReport(
                        identity=identity_of_image(url, image.sha256),
                        tag_id=tag_id,
                        positive=positive,
                        url=url,
                        media_key=media_key,
                    )
                )
            ids = await self.repo.add_items(tenant, slug, new, self.deps.clock())
            for n, item_id in zip(positions, ids, strict=True):
                answers[n] = {"report": json.dumps([[reports[n][2], reports[n][3]]]), "id": item_id}
        return answers

    async def store_image(self, tenant: str, slug: str, image: CheckedImage) -> str:
        key = image_key(tenant, slug, image.sha256)
        await self.deps.media.put_bytes(key, image.data, image.content_type)
        return key

    async def _group_by_dataset(
        self, tenant: str, tag_ids: list[int], *kinds: DatasetType
    ) -> dict[str, list[int]]:
        grouped: dict[str, list[int]] = {}
        datasets: dict[int, Dataset] = {}
        for n, tag_id in enumerate(tag_ids):
            if tag_id not in datasets:
                datasets[tag_id] = await self.repo.dataset_of_tag(tenant, tag_id)
            dataset = datasets[tag_id]
            if dataset.type not in kinds:
                wanted = " or ".join(kind.value for kind in kinds)
                raise WrongDatasetType(
                    f"tag {tag_id} belongs to {dataset.type.value} dataset {dataset.slug!r}, not {wanted}"
                )
            grouped.setdefault(dataset.slug, []).append(n)
        return grouped

    async def remove_report(self, tenant: str, item_id: int, tag_id: int) -> None:
        dataset = await self.repo.dataset_of_tag(tenant, tag_id)
        if not await self.repo.remove_report(tenant, dataset.slug, item_id, tag_id):
            raise ReportNotFound(f"no report of tag {tag_id} on item {item_id}")

    # listings

    async def tag_reports(
        self, tenant: str, tag_id: int, positive: bool | None, notsure: bool, media_base: str
    ) -> list[dict[str, Any]]:
        dataset = await self.repo.dataset_of_tag(tenant, tag_id)
        items = await self.repo.items(tenant, dataset.slug)
        doubted: set[int] | None = None
        if notsure:
            predictions = await self._predictions(tenant, dataset)
            doubted = set(predictions.of(tag_id).notsure)
        rows = []
        for item in reversed(items):  # newest first
            label = item.label(tag_id)
            if label is None or (positive is not None and label != positive):
                continue
            if doubted is not None and item.id not in doubted:
                continue
            rows.append(render_item(item, dataset.type, media_base) | {"tag_id": tag_id, "positive": label})
        return rows

    async def tag_predictions(
        self, tenant: str, slug: str, tag_id: int, media_base: str
    ) -> list[dict[str, Any]]:
        dataset = await self.tag_in(tenant, tag_id, slug)
        predicted = (await self._predictions(tenant, dataset)).of(tag_id).predicted
        found = await self.repo.items_by_id(tenant, slug, [item_id for item_id, _ in predicted])
        rows = []
        for item_id, probability in predicted:
            item = found.get(item_id)
            if item is not None:
                rendered = next(iter(render_item(item, dataset.type, media_base).values()))
                rows.append(rendered | {"probability": probability, "reported": item.label(tag_id)})
        return rows

    async def items(self, tenant: str, slug: str, ids: list[int], kind: DatasetType) -> list[Item]:
        dataset = await self.repo.get(tenant, slug)
        if (dataset.type == DatasetType.TEXT) != (kind == DatasetType.TEXT):
            raise WrongDatasetType(f"dataset {slug!r} holds {dataset.type.value} data")
        found = await self.repo.items_by_id(tenant, slug, ids)
        return [found[item_id] for item_id in ids if item_id in found]

    async def search(
        self, tenant: str, slug: str, query: str, reported: bool | None, tag_id: int | None
    ) -> tuple[Dataset, list[Item]]:
        """Items whose text (or image URL) holds ``query`` after Persian normalisation.

        ``reported`` true: only reported items (of ``tag_id`` when given); false: only unreported ones.
        """
        from functions.train.features.text import normalise

        dataset = await self.repo.get(tenant, slug)
        if tag_id is not None:
            await self.tag_in(tenant, tag_id, slug)
        needle = normalise(query)
        if not needle:
            raise EmptyQuery("query must not be empty")
        matches = []
        titles = {tag.id: normalise(tag.title) for tag in dataset.tags.values()}
        for item in await self.repo.items(tenant, slug):
            if reported is not None:
                has = item.label(tag_id) is not None if tag_id is not None else bool(item.reports)
                if has != reported:
                    continue
            haystack = normalise(item.content or item.url)
            tagged = " ".join(titles.get(int(t), "") for t, positive in item.reports.items() if positive)
            if needle in haystack or needle in tagged:
                matches.append(item)
        return dataset, list(reversed(matches))

    # requests to the train function

    async def train(self, tenant: str, slug: str) -> Dataset:
        dataset = await self.repo.get(tenant, slug)
        active = {str(tag.id) for tag in dataset.active_tags()}
        items = await self.repo.items(tenant, slug)
        if not active:
            raise NothingToTrain(f"dataset {slug!r} has no active tags to train")
        if not any(set(item.reports) & active for item in items):
            raise NothingToTrain(
                f"dataset {slug!r} has no reports on its active tags; report some items first"
            )
        run_id = await self._claim(tenant, slug, DatasetState.WAITING)
        await self.publish(DatasetTrainRequested.for_run(tenant, slug, run_id))
        return await self.repo.get(tenant, slug)

    async def retag(self, tenant: str, slug: str, max_predictions: int) -> Dataset:
        dataset = await self.repo.get(tenant, slug)
        if not dataset.version:
            raise NotTrained(f"dataset {slug!r} has not been trained yet; call train_dataset first")
        run_id = await self._claim(tenant, slug, DatasetState.WAITING)
        await self.publish(
            DatasetRetagRequested.for_run(tenant, slug, run_id, max_predictions=max_predictions)
        )
        return await self.repo.get(tenant, slug)

    async def _claim(self, tenant: str, slug: str, state: DatasetState) -> str:
        run_id = new_job_id()

        def claim(dataset: Dataset) -> Dataset:
            if dataset.state.busy:
                raise DatasetBusy(f"dataset {slug!r} is {dataset.state.value}; wait until it finishes")
            dataset.state, dataset.run_id, dataset.failure_reason = state, run_id, ""
            return dataset

        await self.repo.change(tenant, slug, claim)
        return run_id

    async def export(self, tenant: str, slug: str, params: ExportParams, media_base: str) -> DatasetExport:
        await self.repo.get(tenant, slug)
        run_id = new_job_id()
        operation = DatasetExport(
            id=run_id,
            dataset=slug,
            params=params,
            media_base=media_base,
            file_key=f"{media_prefix(tenant, slug)}exports/{run_id}.csv",
            created_at=self.deps.clock(),
        )
        await self.runs.create_operation(tenant, operation)
        await self.publish(DatasetExportRequested.for_run(tenant, slug, run_id))
        return operation

    async def import_csv(self, tenant: str, slug: str, data: bytes, params: ImportParams) -> DatasetImport:
        await self.repo.get(tenant, slug)
        run_id = new_job_id()
        file_key = f"{media_prefix(tenant, slug)}imports/{run_id}.csv"
        await self.deps.media.put_bytes(file_key, data, "text/csv")
        operation = DatasetImport(
            id=run_id, dataset=slug, params=params, file_key=file_key, created_at=self.deps.clock()
        )
        await self.runs.create_operation(tenant, operation)
        await self.publish(DatasetImportRequested.for_run(tenant, slug, run_id))
        return operation

    async def operation(self, tenant: str, slug: str, run_id: str) -> DatasetExport | DatasetImport:
        await self.repo.get(tenant, slug)
        operation = await self.runs.operation(tenant, slug, run_id)
        if operation is None:
            raise OperationNotFound(f"dataset {slug!r} has no export or import {run_id!r}")
        return operation

    async def tagging(
        self,
        tenant: str,
        slug: str,
        kind: TaggingKind,
        identities: list[str],
        sampling: VideoSampling | None,
        inputs: Callable[[Dataset], Awaitable[list[TaggingInput]]],
    ) -> tuple[Dataset, TaggingRequest]:
        """Find or start the tagging request; ``inputs`` (fetching, storing) runs only to start one."""
        dataset = await self.repo.get(tenant, slug)
        if dataset.type not in kind.dataset_types:
            raise WrongDatasetType(
                f"dataset {slug!r} holds {dataset.type.value} data; {kind.value} needs "
                f"{' or '.join(k.value for k in kind.dataset_types)}"
            )
        if not dataset.version:
            raise NotTrained(f"dataset {slug!r} has not been trained yet; call train_dataset first")
        run_id = request_id(tenant, dataset, kind, identities, sampling)
        existing = await self.runs.tagging(tenant, slug, run_id)
        if existing is not None and existing.state != RunState.FAILED:
            return dataset, existing
        request = TaggingRequest(
            id=run_id,
            kind=kind,
            version=dataset.version,
            params=sampling,
            inputs=tuple(await inputs(dataset)),
            created_at=self.deps.clock(),
        )
        stored, started = await self.runs.start_tagging(tenant, slug, request)
        if started:
            attempt = request.created_at.isoformat()
            await self.publish(TaggingRequested.for_run(tenant, slug, run_id, attempt=attempt))
        return dataset, stored

    async def request_doc(self, tenant: str, slug: str, run_id: str) -> TaggingRequest:
        found = await self.runs.tagging(tenant, slug, run_id)
        if found is None:
            raise TaggingRequestGone(f"tagging request {run_id} is gone")
        return found
