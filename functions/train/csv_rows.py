"""Kashf's dataset CSV, written by ``export_dataset`` and read by ``import_dataset``.

One row per report (an item with no report gets one row with empty ``tag`` and ``positive``), so an
export imports back unchanged. Columns:

    id, content, tag, positive      (text datasets)
    id, url, tag, positive          (image and face datasets)

``tag`` is the tag's id, or its title with ``tag_names``; ``positive`` is ``true``/``false``
(also ``1``/``0``, ``yes``/``no``; empty means true). On import ``id`` is ignored (ids are Shenava's),
a title that names no tag creates it, and every bad row is reported with its line number while the
other rows are imported.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass

from functions.common.bootstrap import Deps
from functions.common.dataset_runs import ExportParams, ImportOutcome, ImportParams, LineError
from functions.common.datasets import (
    Dataset,
    DatasetRepository,
    DatasetType,
    Item,
    NewReport,
    identity_of_image,
    identity_of_text,
    image_key,
)
from functions.common.errors import ShenavaError
from functions.common.fetch import FetchLimits
from functions.common.images import fetch_image

TRUE, FALSE = {"", "true", "1", "yes", "t", "y"}, {"false", "0", "no", "f", "n"}
MAX_ERRORS = 1000  # line errors reported; the rows after are still read
ALIASES = {"content": ("content", "text"), "url": ("url", "image_url")}
Row = dict[str, str]


def value_column(kind: DatasetType) -> str:
    return "content" if kind == DatasetType.TEXT else "url"


def export_csv(dataset: Dataset, items: list[Item], params: ExportParams, media_base: str) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["id", value_column(dataset.type), "tag", "positive"])
    for item in items:
        value = _exported_value(item, dataset.type, params, media_base)
        if not item.reports:
            writer.writerow([item.id, value, "", ""])
        for tag_id, positive in item.reports.items():
            tag = dataset.tags.get(tag_id)
            name = tag.title if tag is not None and params.tag_names else tag_id
            writer.writerow([item.id, value, name, "true" if positive else "false"])
    return out.getvalue()


def _exported_value(item: Item, kind: DatasetType, params: ExportParams, media_base: str) -> str:
    if kind == DatasetType.TEXT:
        return item.content
    if params.original_urls and item.url:
        return item.url
    return f"{media_base}{item.id}/"


class Unreadable(ValueError):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


def read_table(data: bytes, kind: DatasetType) -> tuple[str, Iterator[tuple[int, Row]]]:
    """The header's name for the value column, and the rows (keys lowercased) by line number."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Unreadable(0, "the file is not UTF-8 text") from exc
    reader = csv.DictReader(io.StringIO(text))
    column = value_column(kind)
    header = [name.strip().lower() for name in reader.fieldnames or []]
    found = next((name for name in ALIASES[column] if name in header), None)
    if found is None:
        raise Unreadable(1, f"no {column!r} column in the header")
    rows = (
        (line, {(key or "").strip().lower(): (value or "").strip() for key, value in raw.items()})
        for line, raw in enumerate(reader, start=2)
    )
    return found, rows


async def import_csv(
    data: bytes, *, dataset: Dataset, params: ImportParams, repo: DatasetRepository, deps: Deps, tenant: str
) -> ImportOutcome:
    try:
        column, rows = read_table(data, dataset.type)
    except Unreadable as exc:
        return ImportOutcome(errors=(LineError(line=exc.line, error=str(exc)),))
    reader = RowReader(dataset, params, repo, deps, tenant)
    reports: list[NewReport] = []
    errors: list[LineError] = []
    for line, row in rows:
        try:
            reports.append(await reader.report(row, column))
        except (ValueError, ShenavaError) as exc:
            if len(errors) < MAX_ERRORS:
                errors.append(LineError(line=line, error=str(exc)))
    await reader.save(reports)
    labelled = sum(1 for new in reports if new.tag_id)
    return ImportOutcome(
        imported=len(reports),
        reports=labelled if params.report_items else 0,
        errors=tuple(errors),
    )


@dataclass
class RowReader:
    """Turns rows into reports for one dataset: a title names a tag (a new one creates it), an image
    URL is fetched and stored."""

    dataset: Dataset
    params: ImportParams
    repo: DatasetRepository
    deps: Deps
    tenant: str

    async def report(self, row: Row, column: str) -> NewReport:
        value = row.get(column, "")
        if not value:
            raise ValueError(f"the {column!r} column is empty")
        tag = row.get("tag", "")
        tag_id = await self._tag_id(tag) if tag and self.params.report_items else 0
        positive = row.get("positive", "").lower()
        if positive not in TRUE | FALSE:
            raise ValueError(f"positive must be true or false, not {positive!r}")
        if self.dataset.type == DatasetType.TEXT:
            return NewReport(
                identity=identity_of_text(value), tag_id=tag_id, positive=positive in TRUE, content=value
            )
        settings = self.deps.settings
        image = await fetch_image(value, FetchLimits.from_settings(settings), settings.kashf_max_image_bytes)
        media_key = image_key(self.tenant, self.dataset.slug, image.sha256)
        await self.deps.media.put_bytes(media_key, image.data, image.content_type)
        return NewReport(
            identity=identity_of_image(value, image.sha256),
            tag_id=tag_id,
            positive=positive in TRUE,
            url=value,
            media_key=media_key,
        )

    async def _tag_id(self, tag: str) -> int:
        if not self.params.tag_names:
            if not tag.isdigit() or tag not in self.dataset.tags:
                raise ValueError(f"tag {tag!r} is not a tag id of dataset {self.dataset.slug!r}")
            return int(tag)
        found = next((t.id for t in self.dataset.tags.values() if t.title == tag), None)
        if found is not None:
            return found
        created = await self.repo.add_tag(self.tenant, self.dataset.slug, tag, active=True)
        self.dataset.tags[str(created.id)] = created
        return created.id

    async def save(self, reports: list[NewReport]) -> None:
        """Items with a tag get their reports (unless ``report_items`` is off); the others are items only."""
        now = self.deps.clock()
        labelled = [new for new in reports if new.tag_id]
        unlabelled = [new for new in reports if not new.tag_id]
        if labelled:
            await self.repo.add_items(
                self.tenant, self.dataset.slug, labelled, now, report=self.params.report_items
            )
        if unlabelled:
            await self.repo.add_items(self.tenant, self.dataset.slug, unlabelled, now, report=False)
