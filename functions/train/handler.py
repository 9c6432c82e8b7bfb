"""The train function: dataset work for Kashf, off the API process.

Consumes ``dataset.tagging.requested`` first (a caller may be waiting), then training, retagging,
export and import requests. Every request carries a ``run_id``; the dataset (or the tagging request
or operation document) records the run it is for, so a redelivered event repeats the same run into
the same keys and a stale one is dropped. Each request ends with ``dataset.work.done``, which
wakes the API's waiters; a failure is recorded where the caller looks for the outcome first.

Stages: ``training`` (train, retag), ``tagging`` (tagging requests), ``operations`` (export, import).
"""

from __future__ import annotations

from events.models import (
    DatasetEvent,
    DatasetExportRequested,
    DatasetImportRequested,
    DatasetRetagRequested,
    DatasetTrainRequested,
    DatasetWorkDone,
    Event,
    TaggingRequested,
)
from events.runner import FunctionSpec
from events.subjects import TRAIN, TRAIN_ORDER
from functions.common.bootstrap import Deps
from functions.common.dataset_runs import DatasetExport, DatasetImport, RunDocuments, RunState, TaggingRequest
from functions.common.datasets import Dataset, DatasetRepository, DatasetState
from functions.train.operations import export, import_rows
from functions.train.tagging import tag_request
from functions.train.training import retag, train


async def handle(event: Event, deps: Deps) -> list[Event]:
    if isinstance(event, TaggingRequested):
        await tag_request(event, deps)
    elif isinstance(event, DatasetTrainRequested):
        await train(event, deps)
    elif isinstance(event, DatasetRetagRequested):
        await retag(event, deps)
    elif isinstance(event, DatasetExportRequested):
        await export(event, deps)
    elif isinstance(event, DatasetImportRequested):
        await import_rows(event, deps)
    else:
        return []
    return [done(event)]


def done(event: DatasetEvent, failure: str = "") -> DatasetWorkDone:
    """The outcome of one request event (its id follows the request's, so a retried run wakes too)."""
    return DatasetWorkDone(
        id=f"{event.id}.done",
        tenant=event.tenant,
        dataset=event.dataset,
        run_id=event.run_id,
        work=event.type,
        failure=failure,
    )


async def on_failure(event: Event, deps: Deps, reason: str) -> list[Event]:
    """Record the failure where the caller looks for the outcome, then wake its waiters."""
    if not isinstance(event, DatasetEvent):
        return []
    documents = RunDocuments(deps.state)
    if isinstance(event, DatasetTrainRequested | DatasetRetagRequested):

        def failed(dataset: Dataset) -> Dataset | None:
            if dataset.run_id != event.run_id:
                return None
            dataset.state, dataset.failure_reason = DatasetState.FAILED, reason
            return dataset

        await DatasetRepository(deps.state).change(event.tenant, event.dataset, failed)
    elif isinstance(event, TaggingRequested):

        def failed_request(request: TaggingRequest) -> TaggingRequest:
            return request.model_copy(update={"state": RunState.FAILED, "failure_reason": reason})

        await documents.finish_tagging(event.tenant, event.dataset, event.run_id, failed_request)
    else:

        def failed_operation(operation: DatasetExport | DatasetImport) -> DatasetExport | DatasetImport:
            return operation.model_copy(update={"state": RunState.FAILED, "failure_reason": reason})

        await documents.finish_operation(event.tenant, event.dataset, event.run_id, failed_operation)
    return [done(event, failure=reason)]


SPEC = FunctionSpec(TRAIN, handle, on_failure, order=TRAIN_ORDER)
