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
from typing import Any

from functions.common.bootstrap import Deps
from functions.common.datasets import (
    Dataset,
    DatasetRepository,
    DatasetType,
    Item,
    NewReport,
    identity_of_image,
    identity_of_text,
    media_prefix,
)
from functions.common.errors import ShenavaError
from functions.common.fetch import FetchLimits
from functions.common.images import fetch_image

TRUE, FALSE = {"", "true", "1", "yes", "t", "y"}, {"false", "0", "no", "f", "n"}
MAX_ERRORS = 1000  # reported line errors; the count goes on


def value_column(kind: DatasetType) -> str:
    return "content" if kind == DatasetType.TEXT else "url"


def export_csv(dataset: Dataset, items: list[Item], params: dict[str, Any], media_base: str) -> str:
    column = value_column(dataset.type)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["id", column, "tag", "positive"])
    for item in items:
        if dataset.type == DatasetType.TEXT:
            value = item.content
        else:
            own = f"{media_base}{item.id}/"
            value = item.url if params.get("original_urls", True) and item.url else own
        reports = [(int(tag_id), positive) for tag_id, positive in item.reports.items()]
        if not reports:
            writer.writerow([item.id, value, "", ""])
        for tag_id, positive in reports:
            tag = dataset.tags.get(str(tag_id))
            name = tag.title if tag is not None and params.get("tag_names") else tag_id
            writer.writerow([item.id, value, name, "true" if positive else "false"])
    return out.getvalue()


async def import_csv(
    dataset: Dataset, data: bytes, params: dict[str, Any], repo: DatasetRepository, deps: Deps, tenant: str
) -> dict[str, Any]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return {"imported": 0, "reports": 0, "errors": [{"line": 0, "error": "the file is not UTF-8 text"}]}
    reader = csv.DictReader(io.StringIO(text))
    column = value_column(dataset.type)
    aliases = {"content": ("content", "text"), "url": ("url", "image_url")}[column]
    header = [name.strip().lower() for name in reader.fieldnames or []]
    found = next((name for name in aliases if name in header), None)
    if found is None:
        return {
            "imported": 0,
            "reports": 0,
            "errors": [{"line": 1, "error": f"no {column!r} column in the header"}],
        }
    titles = {tag.title: tag.id for tag in dataset.tags.values()}
    errors: list[dict[str, Any]] = []
    reports: list[NewReport] = []
    report_items = bool(params.get("report_items", True))
    tag_names = bool(params.get("tag_names", False))
    for line, raw in enumerate(reader, start=2):
        row = {(key or "").strip().lower(): (value or "").strip() for key, value in raw.items()}
        try:
            new = await _row(row, found, dataset, titles, tag_names, report_items, repo, deps, tenant)
        except (ValueError, ShenavaError) as exc:
            if len(errors) < MAX_ERRORS:
                errors.append({"line": line, "error": str(exc)})
            continue
        reports.append(new)
    if reports:
        now = deps.clock()
        labelled = [new for new in reports if new.tag_id]
        unlabelled = [new for new in reports if not new.tag_id]
        if labelled:
            await repo.add_items(tenant, dataset.slug, labelled, now, report=report_items)
        if unlabelled:
            await repo.add_items(tenant, dataset.slug, unlabelled, now, report=False)
    return {
        "imported": len(reports),
        "reports": sum(1 for new in reports if new.tag_id) if report_items else 0,
        "errors": errors,
    }


async def _row(
    row: dict[str, str],
    column: str,
    dataset: Dataset,
    titles: dict[str, int],
    tag_names: bool,
    report_items: bool,
    repo: DatasetRepository,
    deps: Deps,
    tenant: str,
) -> NewReport:
    value = row.get(column, "")
    if not value:
        raise ValueError(f"the {column!r} column is empty")
    tag_id = 0
    tag = row.get("tag", "")
    if tag and report_items:
        tag_id = await _tag_id(tag, dataset, titles, tag_names, repo, tenant)
    positive = row.get("positive", "").lower()
    if positive not in TRUE | FALSE:
        raise ValueError(f"positive must be true or false, not {positive!r}")
    if dataset.type == DatasetType.TEXT:
        return NewReport(
            identity=identity_of_text(value), tag_id=tag_id, positive=positive in TRUE, content=value
        )
    settings = deps.settings
    image = await fetch_image(value, FetchLimits.from_settings(settings), settings.kashf_max_image_bytes)
    media_key = f"{media_prefix(tenant, dataset.slug)}images/{image.sha256}"
    await deps.media.put_bytes(media_key, image.data, image.content_type)
    return NewReport(
        identity=identity_of_image(value, image.sha256),
        tag_id=tag_id,
        positive=positive in TRUE,
        url=value,
        media_key=media_key,
    )


async def _tag_id(
    tag: str, dataset: Dataset, titles: dict[str, int], tag_names: bool, repo: DatasetRepository, tenant: str
) -> int:
    if tag_names:
        if tag not in titles:
            created = await repo.add_tag(tenant, dataset.slug, tag, active=True)
            titles[tag] = created.id
            dataset.tags[str(created.id)] = created
        return titles[tag]
    if not tag.isdigit() or tag not in dataset.tags:
        raise ValueError(f"tag {tag!r} is not a tag id of dataset {dataset.slug!r}")
    return int(tag)
