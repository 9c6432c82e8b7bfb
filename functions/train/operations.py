"""Exports and imports of a dataset's items and reports as CSV (``csv_rows``), off the API process.

The API stores the operation (and, for an import, the CSV in the media bucket) before it publishes
the event; here the operation is read, done, and finished with its outcome. A redelivered event of
a finished operation, or one whose document is gone, does nothing.
"""

from __future__ import annotations

from events.models import DatasetEvent, DatasetExportRequested, DatasetImportRequested
from functions.common.bootstrap import Deps
from functions.common.dataset_runs import DatasetExport, DatasetImport, RunDocuments, RunState
from functions.common.datasets import DatasetRepository
from functions.train import csv_rows
from functions.train.errors import OperationMismatch
from functions.train.media import read_media


async def _pending(event: DatasetEvent, deps: Deps, kind: str) -> DatasetExport | DatasetImport | None:
    operation = await RunDocuments(deps.state).operation(event.tenant, event.dataset, event.run_id)
    if operation is None or operation.state.finished:
        return None
    if operation.kind != kind:
        raise OperationMismatch(f"operation {event.run_id} is an {operation.kind}, not an {kind}")
    return operation


async def export(event: DatasetExportRequested, deps: Deps) -> None:
    operation = await _pending(event, deps, "export")
    if not isinstance(operation, DatasetExport):
        return
    repo = DatasetRepository(deps.state)
    dataset = await repo.get(event.tenant, event.dataset)
    items = await repo.items(event.tenant, event.dataset)
    text = csv_rows.export_csv(dataset, items, operation.params, operation.media_base)
    await deps.media.put_bytes(operation.file_key, text.encode(), "text/csv; charset=utf-8")
    rows = text.count("\n") - 1

    def finish(current: DatasetExport | DatasetImport) -> DatasetExport | DatasetImport:
        return current.model_copy(update={"state": RunState.DONE, "rows": rows})

    await RunDocuments(deps.state).finish_operation(event.tenant, event.dataset, event.run_id, finish)


async def import_rows(event: DatasetImportRequested, deps: Deps) -> None:
    operation = await _pending(event, deps, "import")
    if not isinstance(operation, DatasetImport):
        return
    repo = DatasetRepository(deps.state)
    dataset = await repo.get(event.tenant, event.dataset)
    data = await read_media(deps, operation.file_key)
    outcome = await csv_rows.import_csv(
        data, dataset=dataset, params=operation.params, repo=repo, deps=deps, tenant=event.tenant
    )

    def finish(current: DatasetExport | DatasetImport) -> DatasetExport | DatasetImport:
        return current.model_copy(update={"state": RunState.DONE, "outcome": outcome})

    await RunDocuments(deps.state).finish_operation(event.tenant, event.dataset, event.run_id, finish)
