"""Kashf datasets in the state bucket: the dataset document, its tags, items with their reports, runs.

Layout (tenant-scoped, DESIGN §3):

    tenants/<t>/kashf/counter.json                   the tenant's next numeric id (tags and items)
    tenants/<t>/kashf/tags/<tag_id>.json             the dataset a tag belongs to (requests name only a tag)
    tenants/<t>/datasets/<slug>/dataset.json         title, type, state, tags, trained version, evaluation
    tenants/<t>/datasets/<slug>/items/<shard>.json   items (a text or an image) and their reports
    tenants/<t>/datasets/<slug>/runs/<version>/model.json        featurizer and per-tag models of a run
    tenants/<t>/datasets/<slug>/runs/<version>/predictions.json  per tag: predicted items, "not sure" reports
    tenants/<t>/datasets/<slug>/features/<shard>.json            cached image/face embeddings per item
    tenants/<t>/datasets/<slug>/requests/<request_id>.json       a tagging request and, when done, its result
    tenants/<t>/datasets/<slug>/operations/<run_id>.json         an export or import and its outcome

Items live in ``SHARDS`` objects rather than one object each, so training reads a dataset in a few
requests and a batch of reports costs one conditional write per shard. An item's shard comes from
its identity (normalised text, or the image's URL or content hash), so reporting the same text twice
finds the same item; the shard is also the id's remainder (``id % SHARDS``), so an id finds its shard.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from functions.common.dataset_errors import DatasetExists, DatasetNotFound, InvalidSlug, TagNotFound
from functions.common.state_store import AlreadyExists, Document, StateStore, update

SHARDS = 16
SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


class DatasetType(StrEnum):
    TEXT = "text"
    IMAGE = "image"
    FACE = "face"

    @property
    def wire(self) -> str:
        """How ``list_datasets`` names it (the document's sample: ``image-tag``)."""
        return f"{self.value}-tag"


class DatasetState(StrEnum):
    UNTRAINED = "untrained"
    WAITING = "waiting"
    TRAINING = "training"
    TRAINED = "trained"
    RETAGGING = "retagging"
    RETAGGED = "retagged"
    FAILED = "failed"

    @property
    def busy(self) -> bool:
        return self in {DatasetState.WAITING, DatasetState.TRAINING, DatasetState.RETAGGING}


class Evaluation(BaseModel):
    """Precision, recall and F1 in percent (the document's ``"recall": 80.3``)."""

    precision: float
    recall: float
    f1: float

    @classmethod
    def of_fractions(cls, precision: float, recall: float, f1: float) -> Evaluation:
        return cls(precision=round(100 * precision, 1), recall=round(100 * recall, 1), f1=round(100 * f1, 1))


class Tag(BaseModel):
    id: int
    title: str
    active: bool = True
    evaluation: Evaluation | None = None
    model: str = ""  # the kind of model its last training gave it (lightgbm, or the fallback's name)


class Dataset(BaseModel):
    slug: str
    title: str
    type: DatasetType
    state: DatasetState = DatasetState.UNTRAINED
    created_at: datetime
    trained_at: datetime | None = None
    version: str = ""  # the run whose models tag new data; "" until the first training
    run_id: str = ""  # the run in progress or last requested
    failure_reason: str = ""
    evaluation: Evaluation | None = None
    tags: dict[str, Tag] = Field(default_factory=dict)  # by str(tag id), in creation order

    def tag(self, tag_id: int) -> Tag:
        tag = self.tags.get(str(tag_id))
        if tag is None:
            raise TagNotFound(f"tag {tag_id} is not in dataset {self.slug!r}")
        return tag

    def active_tags(self) -> list[Tag]:
        return [tag for tag in self.tags.values() if tag.active]


class Item(BaseModel):
    """One text or image of a dataset, with the human reports on it (tag id → positive)."""

    id: int
    content: str = ""  # texts
    url: str = ""  # images: the URL it came from ("" for uploads)
    media_key: str = ""  # images: the copy in the media bucket
    identity: str  # what makes two reports name the same item
    reports: dict[str, bool] = Field(default_factory=dict)
    added_at: datetime
    processed: datetime | None = None  # last time a model tagged it (training or retagging)

    def label(self, tag_id: int) -> bool | None:
        return self.reports.get(str(tag_id))


class NewReport(BaseModel):
    identity: str
    tag_id: int
    positive: bool
    content: str = ""
    url: str = ""
    media_key: str = ""


def identity_of_text(text: str) -> str:
    return "t:" + " ".join(text.split())


def identity_of_image(url: str, digest: str) -> str:
    return f"i:{url}" if url else f"i:sha256:{digest}"


def shard_of(identity: str) -> int:
    return hashlib.sha256(identity.encode()).digest()[0] % SHARDS


def check_slug(slug: str) -> str:
    if not SLUG.match(slug):
        raise InvalidSlug(f"dataset slug {slug!r} must be 1-64 letters, digits, '-' or '_'")
    return slug


def dataset_prefix(tenant: str, slug: str) -> str:
    return f"tenants/{tenant}/datasets/{slug}/"


def dataset_key(tenant: str, slug: str) -> str:
    return dataset_prefix(tenant, slug) + "dataset.json"


def items_key(tenant: str, slug: str, shard: int) -> str:
    return dataset_prefix(tenant, slug) + f"items/{shard:02d}.json"


def features_key(tenant: str, slug: str, shard: int) -> str:
    return dataset_prefix(tenant, slug) + f"features/{shard:02d}.json"


def model_key(tenant: str, slug: str, version: str) -> str:
    return dataset_prefix(tenant, slug) + f"runs/{version}/model.json"


def predictions_key(tenant: str, slug: str, version: str) -> str:
    return dataset_prefix(tenant, slug) + f"runs/{version}/predictions.json"


def request_key(tenant: str, slug: str, request_id: str) -> str:
    return dataset_prefix(tenant, slug) + f"requests/{request_id}.json"


def operation_key(tenant: str, slug: str, run_id: str) -> str:
    return dataset_prefix(tenant, slug) + f"operations/{run_id}.json"


def tag_index_key(tenant: str, tag_id: int) -> str:
    return f"tenants/{tenant}/kashf/tags/{tag_id}.json"


def media_prefix(tenant: str, slug: str) -> str:
    """Where a dataset's images, tagging inputs and exports live in the media bucket."""
    return f"kashf/{tenant}/{slug}/"


def image_key(tenant: str, slug: str, sha256: str) -> str:
    """A dataset image (reported or to tag) in the media bucket, by its content."""
    return f"{media_prefix(tenant, slug)}images/{sha256}"


class DatasetRepository:
    """Every read and write of Kashf state; conditional writes only (``state_store.update``)."""

    def __init__(self, store: StateStore) -> None:
        self.store = store

    # datasets

    async def create(self, tenant: str, dataset: Dataset) -> None:
        try:
            await self.store.create(dataset_key(tenant, dataset.slug), dataset.model_dump(mode="json"))
        except AlreadyExists as exc:
            raise DatasetExists(f"dataset {dataset.slug!r} already exists") from exc

    async def find(self, tenant: str, slug: str) -> Dataset | None:
        found = await self.store.get(dataset_key(tenant, slug))
        return Dataset.model_validate(found[0]) if found else None

    async def get(self, tenant: str, slug: str) -> Dataset:
        dataset = await self.find(tenant, check_slug(slug))
        if dataset is None:
            raise DatasetNotFound(f"dataset {slug!r} does not exist")
        return dataset

    async def all(self, tenant: str) -> list[Dataset]:
        keys = [
            k
            for k in await self.store.list_keys(f"tenants/{tenant}/datasets/")
            if k.endswith("/dataset.json")
        ]
        found = [await self.store.get(key) for key in keys]
        return [Dataset.model_validate(doc) for doc, _ in filter(None, found)]

    async def change(self, tenant: str, slug: str, mutate: Callable[[Dataset], Dataset | None]) -> Dataset:
        """Apply ``mutate`` (pure; may run several times; None leaves it) to the stored dataset."""

        def apply(doc: Document | None) -> Document | None:
            if doc is None:
                raise DatasetNotFound(f"dataset {slug!r} does not exist")
            changed = mutate(Dataset.model_validate(doc))
            return changed.model_dump(mode="json") if changed is not None else None

        doc = await update(self.store, dataset_key(tenant, slug), apply)
        assert doc is not None
        return Dataset.model_validate(doc)

    # ids and tags

    async def allocate_ids(self, tenant: str, count: int) -> list[int]:
        """``count`` fresh numeric ids, each a multiple of SHARDS (an item adds its shard)."""
        key = f"tenants/{tenant}/kashf/counter.json"
        seen: dict[str, int] = {}

        def take(doc: Document | None) -> Document:
            start = int((doc or {}).get("next", 1))
            seen["start"] = start
            return {"next": start + count}

        await update(self.store, key, take)
        return [(seen["start"] + n) * SHARDS for n in range(count)]

    async def add_tag(self, tenant: str, slug: str, title: str, active: bool) -> Tag:
        await self.get(tenant, slug)
        (tag_id,) = await self.allocate_ids(tenant, 1)
        tag = Tag(id=tag_id, title=title, active=active)
        await self.store.put(tag_index_key(tenant, tag_id), {"dataset": slug})

        def add(dataset: Dataset) -> Dataset:
            dataset.tags[str(tag_id)] = tag
            return dataset

        await self.change(tenant, slug, add)
        return tag

    async def dataset_of_tag(self, tenant: str, tag_id: int) -> Dataset:
        found = await self.store.get(tag_index_key(tenant, tag_id))
        if found is None:
            raise TagNotFound(f"tag {tag_id} does not exist")
        dataset = await self.get(tenant, str(found[0]["dataset"]))
        dataset.tag(tag_id)
        return dataset

    async def remove_tag(self, tenant: str, slug: str, tag_id: int) -> int:
        """Delete a tag and every report of it; the number of reports deleted."""

        def drop(dataset: Dataset) -> Dataset:
            dataset.tags.pop(str(tag_id), None)
            return dataset

        await self.change(tenant, slug, drop)
        deleted = 0
        for shard in range(SHARDS):
            counted: dict[str, int] = {}

            def strip(doc: Document | None, counted: dict[str, int] = counted) -> Document | None:
                if doc is None:
                    return None
                counted["n"] = 0
                for item in doc["items"].values():
                    if item["reports"].pop(str(tag_id), None) is not None:
                        counted["n"] += 1
                return doc if counted["n"] else None

            await update(self.store, items_key(tenant, slug, shard), strip)
            deleted += counted.get("n", 0)
        await self.store.delete(tag_index_key(tenant, tag_id))
        return deleted

    # items and reports

    async def items(self, tenant: str, slug: str) -> list[Item]:
        """Every item of the dataset, by id."""
        shards = await asyncio.gather(*(self.store.get(items_key(tenant, slug, s)) for s in range(SHARDS)))
        items = [Item.model_validate(doc) for found in shards if found for doc in found[0]["items"].values()]
        return sorted(items, key=lambda item: item.id)

    async def items_by_id(self, tenant: str, slug: str, ids: list[int]) -> dict[int, Item]:
        found: dict[int, Item] = {}
        wanted = sorted({item_id % SHARDS for item_id in ids})
        for doc in await asyncio.gather(*(self.store.get(items_key(tenant, slug, s)) for s in wanted)):
            if doc:
                for item_id in ids:
                    raw = doc[0]["items"].get(str(item_id))
                    if raw is not None:
                        found[item_id] = Item.model_validate(raw)
        return found

    async def add_items(
        self, tenant: str, slug: str, reports: list[NewReport], now: datetime, report: bool = True
    ) -> list[int]:
        """Register each report's item (once per identity) and, if ``report``, its label; the item ids."""
        by_shard: dict[int, list[int]] = {}
        for n, new in enumerate(reports):
            by_shard.setdefault(shard_of(new.identity), []).append(n)
        fresh = iter(await self.allocate_ids(tenant, len(reports)))
        ids: list[int] = [0] * len(reports)
        for shard, positions in by_shard.items():
            candidates = {n: next(fresh) + shard for n in positions}

            def merge(
                doc: Document | None, positions: list[int] = positions, candidates: dict = candidates
            ) -> Document:
                doc = doc or {"items": {}}
                by_identity = {item["identity"]: item for item in doc["items"].values()}
                for n in positions:
                    new = reports[n]
                    item = by_identity.get(new.identity)
                    if item is None:
                        item = Item(
                            id=candidates[n],
                            identity=new.identity,
                            content=new.content,
                            url=new.url,
                            media_key=new.media_key,
                            added_at=now,
                        ).model_dump(mode="json")
                        doc["items"][str(item["id"])] = item
                        by_identity[new.identity] = item
                    if report:
                        item["reports"][str(new.tag_id)] = new.positive
                    ids[n] = int(item["id"])
                return doc

            await update(self.store, items_key(tenant, slug, shard), merge)
        return ids

    async def remove_report(self, tenant: str, slug: str, item_id: int, tag_id: int) -> bool:
        removed: dict[str, bool] = {}

        def drop(doc: Document | None) -> Document | None:
            item = (doc or {}).get("items", {}).get(str(item_id))
            removed["found"] = item is not None and str(tag_id) in item["reports"]
            if not removed["found"]:
                return None
            del item["reports"][str(tag_id)]
            return doc

        await update(self.store, items_key(tenant, slug, item_id % SHARDS), drop)
        return removed["found"]

    async def mark_processed(self, tenant: str, slug: str, ids: set[int], now: datetime) -> None:
        for shard in sorted({item_id % SHARDS for item_id in ids}):

            def stamp(doc: Document | None) -> Document | None:
                if doc is None:
                    return None
                for key, item in doc["items"].items():
                    if int(key) in ids:
                        item["processed"] = now.isoformat()
                return doc

            await update(self.store, items_key(tenant, slug, shard), stamp)

    # a run's models and the feature caches (requests, operations: dataset_runs)

    async def get_json(self, key: str) -> Document | None:
        found = await self.store.get(key)
        return found[0] if found else None

    async def put_json(self, key: str, doc: Document) -> None:
        await self.store.put(key, doc)
