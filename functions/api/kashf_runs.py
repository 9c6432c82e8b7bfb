"""Kashf's work for the train function: training, retagging, export, import and tagging requests.

None of it runs here. Training and retagging claim the dataset for a new run (one at a time) and
publish the request; an export or import is stored as an operation first. A tagging request is
named by a hash of what it asks (dataset version, kind, inputs, frame sampling), so an identical
call finds the earlier request: its media are fetched and stored only to start a new one (or to
retry a failed one). With ``wait``, tagging waits on the bus for the request's run, up to
``kashf_wait_timeout_s``; the caller then reads the request's state.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from events.models import (
    DatasetEvent,
    DatasetExportRequested,
    DatasetImportRequested,
    DatasetRetagRequested,
    DatasetTrainRequested,
    TaggingRequested,
)
from functions.api.kashf_media import MediaIntake, NamedImage
from functions.common.bootstrap import Deps
from functions.common.dataset_errors import (
    DatasetBusy,
    NothingToTrain,
    NotTrained,
    OperationNotFound,
    TaggingRequestGone,
    WrongDatasetType,
)
from functions.common.dataset_runs import (
    DatasetExport,
    DatasetImport,
    ExportParams,
    ImportParams,
    MediaInput,
    RunDocuments,
    RunState,
    TaggingInput,
    TaggingKind,
    TaggingRequest,
    TextInput,
    VideoSampling,
)
from functions.common.datasets import Dataset, DatasetRepository, DatasetState, media_prefix
from functions.common.jobs import new_job_id

Inputs = Callable[[Dataset], Awaitable[list[TaggingInput]]]


@dataclass(frozen=True)
class Tagged:
    """A tagging request as it stands, and the dataset it asks (whose tags name its results)."""

    dataset: Dataset
    request: TaggingRequest


def request_id(
    tenant: str, dataset: Dataset, kind: TaggingKind, identities: list[str], sampling: VideoSampling | None
) -> str:
    """The name of a tagging request: a hash of what it asks (as earlier versions named them)."""
    params = sampling.model_dump() if sampling is not None else {}
    body = [tenant, dataset.slug, dataset.version, kind.value, identities, params]
    return hashlib.sha256(json.dumps(body, ensure_ascii=False).encode()).hexdigest()[:32]


class KashfRuns:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.repo = DatasetRepository(deps.state)
        self.documents = RunDocuments(deps.state)
        self.media = MediaIntake(deps)

    async def publish(self, event: DatasetEvent) -> None:
        await self.deps.bus.publish(event)

    # training and retagging

    async def train(self, tenant: str, slug: str) -> Dataset:
        dataset = await self.repo.get(tenant, slug)
        active = {str(tag.id) for tag in dataset.active_tags()}
        if not active:
            raise NothingToTrain(f"dataset {slug!r} has no active tags to train")
        items = await self.repo.items(tenant, slug)
        if not any(set(item.reports) & active for item in items):
            raise NothingToTrain(
                f"dataset {slug!r} has no reports on its active tags; report some items first"
            )
        run_id = await self._claim(tenant, slug)
        await self.publish(DatasetTrainRequested.for_run(tenant, slug, run_id))
        return await self.repo.get(tenant, slug)

    async def retag(self, tenant: str, *, slug: str, max_predictions: int) -> Dataset:
        dataset = await self.repo.get(tenant, slug)
        if not dataset.version:
            raise NotTrained(f"dataset {slug!r} has not been trained yet; call train_dataset first")
        run_id = await self._claim(tenant, slug)
        await self.publish(
            DatasetRetagRequested.for_run(tenant, slug, run_id, max_predictions=max_predictions)
        )
        return await self.repo.get(tenant, slug)

    async def _claim(self, tenant: str, slug: str) -> str:
        """A new run id, recorded on the dataset (WAITING) unless a run is in progress."""
        run_id = new_job_id()

        def claim(dataset: Dataset) -> Dataset:
            if dataset.state.busy:
                raise DatasetBusy(f"dataset {slug!r} is {dataset.state.value}; wait until it finishes")
            dataset.state, dataset.run_id, dataset.failure_reason = DatasetState.WAITING, run_id, ""
            return dataset

        await self.repo.change(tenant, slug, claim)
        return run_id

    # export and import

    async def export(self, tenant: str, *, slug: str, params: ExportParams, media_base: str) -> DatasetExport:
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
        await self.documents.create_operation(tenant, operation)
        await self.publish(DatasetExportRequested.for_run(tenant, slug, run_id))
        return operation

    async def import_csv(
        self, tenant: str, *, slug: str, params: ImportParams, data: bytes | None, csv_url: str
    ) -> DatasetImport:
        """Import the CSV sent (``data``) or the one at ``csv_url``."""
        await self.repo.get(tenant, slug)
        if data is None:
            data = await self.media.fetch_csv(csv_url)
        run_id = new_job_id()
        file_key = f"{media_prefix(tenant, slug)}imports/{run_id}.csv"
        await self.deps.media.put_bytes(file_key, data, "text/csv")
        operation = DatasetImport(
            id=run_id, dataset=slug, params=params, file_key=file_key, created_at=self.deps.clock()
        )
        await self.documents.create_operation(tenant, operation)
        await self.publish(DatasetImportRequested.for_run(tenant, slug, run_id))
        return operation

    async def operation(self, tenant: str, *, slug: str, run_id: str) -> DatasetExport | DatasetImport:
        await self.repo.get(tenant, slug)
        operation = await self.documents.operation(tenant, slug, run_id)
        if operation is None:
            raise OperationNotFound(f"dataset {slug!r} has no export or import {run_id!r}")
        return operation

    async def exported(self, operation: DatasetExport) -> bytes:
        return await self.media.stored(operation.file_key)

    # tagging

    async def tag_texts(self, tenant: str, *, slug: str, contents: list[str], wait: bool) -> Tagged:
        async def inputs(_: Dataset) -> list[TaggingInput]:
            return [TextInput(content=content) for content in contents]

        return await self._tag(
            tenant, slug=slug, kind=TaggingKind.TEXTS, identities=contents, inputs=inputs, wait=wait
        )

    async def tag_images(
        self,
        tenant: str,
        *,
        slug: str,
        kind: TaggingKind,
        urls: list[str],
        uploads: list[NamedImage],
        wait: bool,
    ) -> Tagged:
        async def inputs(dataset: Dataset) -> list[TaggingInput]:
            named = [(url, await self.media.fetch_image(url)) for url in urls]
            named += [(upload.name, upload.image) for upload in uploads]
            return [
                MediaInput(url=name, media_key=await self.media.store_image(tenant, dataset.slug, image))
                for name, image in named
            ]

        identities = urls + [f"sha256:{upload.image.sha256}" for upload in uploads]
        return await self._tag(tenant, slug=slug, kind=kind, identities=identities, inputs=inputs, wait=wait)

    async def tag_videos(
        self,
        tenant: str,
        *,
        slug: str,
        kind: TaggingKind,
        urls: list[str],
        sampling: VideoSampling,
        wait: bool,
    ) -> Tagged:
        async def inputs(dataset: Dataset) -> list[TaggingInput]:
            return [
                MediaInput(url=url, media_key=await self.media.store_video(tenant, dataset.slug, url))
                for url in urls
            ]

        return await self._tag(
            tenant, slug=slug, kind=kind, identities=urls, inputs=inputs, wait=wait, sampling=sampling
        )

    async def _tag(
        self,
        tenant: str,
        *,
        slug: str,
        kind: TaggingKind,
        identities: list[str],
        inputs: Inputs,
        wait: bool,
        sampling: VideoSampling | None = None,
    ) -> Tagged:
        """Find the identical request, or start it (``inputs`` runs only then); wait if asked."""
        dataset = await self._taggable(tenant, slug, kind)
        run_id = request_id(tenant, dataset, kind, identities, sampling)
        request = await self.documents.tagging(tenant, slug, run_id)
        if request is None or request.state == RunState.FAILED:
            new = TaggingRequest(
                id=run_id,
                kind=kind,
                version=dataset.version,
                params=sampling,
                inputs=tuple(await inputs(dataset)),
                created_at=self.deps.clock(),
            )
            request = await self._start(tenant, slug, new)
        if wait and not request.state.finished:
            request = await self._wait(tenant, slug, request)
        return Tagged(dataset, request)

    async def _taggable(self, tenant: str, slug: str, kind: TaggingKind) -> Dataset:
        dataset = await self.repo.get(tenant, slug)
        if dataset.type not in kind.dataset_types:
            raise WrongDatasetType(
                f"dataset {slug!r} holds {dataset.type.value} data; {kind.value} needs "
                f"{' or '.join(k.value for k in kind.dataset_types)}"
            )
        if not dataset.version:
            raise NotTrained(f"dataset {slug!r} has not been trained yet; call train_dataset first")
        return dataset

    async def _start(self, tenant: str, slug: str, request: TaggingRequest) -> TaggingRequest:
        stored, started = await self.documents.start_tagging(tenant, slug, request)
        if started:  # else an identical call stored it first, and published it
            attempt = request.created_at.isoformat()  # a retried request is a new message
            await self.publish(TaggingRequested.for_run(tenant, slug, request.id, attempt=attempt))
        return stored

    async def _wait(self, tenant: str, slug: str, request: TaggingRequest) -> TaggingRequest:
        latest = request

        async def finished() -> bool:
            nonlocal latest
            found = await self.documents.tagging(tenant, slug, request.id)
            if found is None:
                raise TaggingRequestGone(f"tagging request {request.id} is gone")
            latest = found
            return latest.state.finished

        await self.deps.bus.wait(request.id, finished, self.deps.settings.kashf_wait_timeout_s)
        return latest
