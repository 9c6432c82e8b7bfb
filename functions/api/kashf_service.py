"""Kashf's core for datasets, tags, reports and listings (``KashfRuns`` has the train function's work).

Everything works on the tenant's datasets through ``DatasetRepository`` and answers in the
datasets' own terms (``Dataset``, ``Tag``, ``Item``); the routers render Kashf's shapes. Reports
name only a tag, so each is grouped under the dataset its tag belongs to; reporting the same text
(or image URL) again labels the same item.
"""

from __future__ import annotations

from dataclasses import dataclass

from functions.api.kashf_media import MediaIntake
from functions.common.bootstrap import Deps
from functions.common.dataset_errors import (
    EmptyQuery,
    ReportNotFound,
    TagOfAnotherDataset,
    TagTitleTaken,
    WrongDatasetType,
)
from functions.common.dataset_runs import Predictions, RunDocuments
from functions.common.datasets import (
    Dataset,
    DatasetRepository,
    DatasetType,
    Item,
    NewReport,
    Tag,
    check_slug,
    identity_of_image,
    identity_of_text,
)
from functions.common.images import CheckedImage, check_image
from functions.common.persian import normalise


@dataclass(frozen=True)
class Label:
    """One report: ``tag_id`` applies to the item (``positive``) or does not."""

    tag_id: int
    positive: bool


@dataclass(frozen=True)
class TextLabel(Label):
    content: str


@dataclass(frozen=True)
class ImageLabel(Label):
    image: CheckedImage
    url: str  # where it came from; "" for an upload


@dataclass(frozen=True)
class ImageUrlLabel(Label):
    url: str


@dataclass(frozen=True)
class Reported(Label):
    item_id: int


@dataclass(frozen=True)
class DatasetView:
    dataset: Dataset
    items: list[Item]
    predictions: Predictions


@dataclass(frozen=True)
class Predicted:
    item: Item
    probability: float
    reported: bool | None  # the item's report for the tag, if any


class KashfService:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.repo = DatasetRepository(deps.state)
        self.runs = RunDocuments(deps.state)
        self.media = MediaIntake(deps)

    # datasets

    async def create_dataset(self, tenant: str, *, slug: str, title: str, kind: DatasetType) -> Dataset:
        dataset = Dataset(slug=check_slug(slug), title=title, type=kind, created_at=self.deps.clock())
        await self.repo.create(tenant, dataset)
        return dataset

    async def datasets(self, tenant: str) -> list[Dataset]:
        return sorted(await self.repo.all(tenant), key=lambda d: d.created_at)

    async def dataset(self, tenant: str, slug: str) -> Dataset:
        return await self.repo.get(tenant, slug)

    async def view(self, tenant: str, slug: str) -> DatasetView:
        dataset = await self.repo.get(tenant, slug)
        items = await self.repo.items(tenant, slug)
        return DatasetView(dataset, items, await self._predictions(tenant, dataset))

    async def report_count(self, tenant: str, slug: str) -> int:
        return sum(len(item.reports) for item in await self.repo.items(tenant, slug))

    async def _predictions(self, tenant: str, dataset: Dataset) -> Predictions:
        return await self.runs.predictions(tenant, dataset.slug, dataset.version)

    # tags

    async def create_tag(self, tenant: str, *, slug: str, title: str, active: bool) -> Tag:
        dataset = await self.repo.get(tenant, slug)
        if any(tag.title == title for tag in dataset.tags.values()):
            raise TagTitleTaken(f"dataset {slug!r} already has a tag titled {title!r}")
        return await self.repo.add_tag(tenant, slug, title, active)

    async def update_tag(self, tenant: str, *, slug: str, tag_id: int, title: str, active: bool) -> Tag:
        dataset = await self.tag_in(tenant, tag_id, slug)
        if any(tag.title == title and tag.id != tag_id for tag in dataset.tags.values()):
            raise TagTitleTaken(f"dataset {slug!r} already has a tag titled {title!r}")

        def edit(current: Dataset) -> Dataset:
            tag = current.tag(tag_id)
            tag.title, tag.active = title, active
            return current

        return (await self.repo.change(tenant, dataset.slug, edit)).tag(tag_id)

    async def delete_tag(self, tenant: str, tag_id: int) -> tuple[Dataset, int]:
        """The tag's dataset and the number of reports deleted with it."""
        dataset = await self.repo.dataset_of_tag(tenant, tag_id)
        return dataset, await self.repo.remove_tag(tenant, dataset.slug, tag_id)

    async def tag_in(self, tenant: str, tag_id: int, slug: str | None = None) -> Dataset:
        """The dataset of ``tag_id``; ``TagOfAnotherDataset`` if that is not ``slug``."""
        dataset = await self.repo.dataset_of_tag(tenant, tag_id)
        if slug is not None and dataset.slug != slug:
            await self.repo.get(tenant, slug)  # an unknown dataset is named first
            raise TagOfAnotherDataset(f"tag {tag_id} belongs to dataset {dataset.slug!r}, not {slug!r}")
        return dataset

    # reports

    async def report_texts(self, tenant: str, labels: list[TextLabel]) -> list[Reported]:
        grouped = await self._by_dataset(tenant, labels, (DatasetType.TEXT,))
        new = {
            n: NewReport(
                identity=identity_of_text(label.content),
                tag_id=label.tag_id,
                positive=label.positive,
                content=label.content,
            )
            for n, label in enumerate(labels)
        }
        return await self._add(tenant, labels, grouped, new)

    async def report_image_urls(self, tenant: str, labels: list[ImageUrlLabel]) -> list[Reported]:
        """Reports of images by URL: the tags are checked before anything is downloaded."""
        for label in labels:
            await self.tag_in(tenant, label.tag_id)
        images = [
            ImageLabel(
                tag_id=label.tag_id,
                positive=label.positive,
                image=await self.media.fetch_image(label.url),
                url=label.url,
            )
            for label in labels
        ]
        return await self.report_images(tenant, images)

    async def report_images(self, tenant: str, labels: list[ImageLabel]) -> list[Reported]:
        grouped = await self._by_dataset(tenant, labels, (DatasetType.IMAGE, DatasetType.FACE))
        new = {}
        for slug, positions in grouped.items():
            for n in positions:
                label = labels[n]
                new[n] = NewReport(
                    identity=identity_of_image(label.url, label.image.sha256),
                    tag_id=label.tag_id,
                    positive=label.positive,
                    url=label.url,
                    media_key=await self.media.store_image(tenant, slug, label.image),
                )
        return await self._add(tenant, labels, grouped, new)

    async def _by_dataset(
        self, tenant: str, labels: list[TextLabel] | list[ImageLabel], kinds: tuple[DatasetType, ...]
    ) -> dict[str, list[int]]:
        """The labels' positions grouped by their tags' datasets, which must hold ``kinds`` data."""
        grouped: dict[str, list[int]] = {}
        datasets: dict[int, Dataset] = {}
        for n, label in enumerate(labels):
            if label.tag_id not in datasets:
                datasets[label.tag_id] = await self.repo.dataset_of_tag(tenant, label.tag_id)
            dataset = datasets[label.tag_id]
            if dataset.type not in kinds:
                wanted = " or ".join(kind.value for kind in kinds)
                held = f"{dataset.type.value} dataset {dataset.slug!r}"
                raise WrongDatasetType(f"tag {label.tag_id} belongs to {held}, not {wanted}")
            grouped.setdefault(dataset.slug, []).append(n)
        return grouped

    async def _add(
        self,
        tenant: str,
        labels: list[TextLabel] | list[ImageLabel],
        grouped: dict[str, list[int]],
        new: dict[int, NewReport],
    ) -> list[Reported]:
        item_ids = [0] * len(labels)
        for slug, positions in grouped.items():
            ids = await self.repo.add_items(tenant, slug, [new[n] for n in positions], self.deps.clock())
            for n, item_id in zip(positions, ids, strict=True):
                item_ids[n] = item_id
        return [
            Reported(tag_id=label.tag_id, positive=label.positive, item_id=item_id)
            for label, item_id in zip(labels, item_ids, strict=True)
        ]

    async def remove_report(self, tenant: str, *, item_id: int, tag_id: int) -> None:
        dataset = await self.repo.dataset_of_tag(tenant, tag_id)
        if not await self.repo.remove_report(tenant, dataset.slug, item_id, tag_id):
            raise ReportNotFound(f"no report of tag {tag_id} on item {item_id}")

    # listings

    async def tag_reports(
        self, tenant: str, *, tag_id: int, positive: bool | None, notsure: bool
    ) -> tuple[Dataset, list[tuple[Item, bool]]]:
        """The items reported for the tag (newest first) with their label; ``notsure``: only those
        the last training's out-of-fold model disagreed with."""
        dataset = await self.repo.dataset_of_tag(tenant, tag_id)
        items = await self.repo.items(tenant, dataset.slug)
        doubted = set((await self._predictions(tenant, dataset)).of(tag_id).notsure) if notsure else None
        rows = []
        for item in reversed(items):
            label = item.label(tag_id)
            if label is None or (positive is not None and label != positive):
                continue
            if doubted is None or item.id in doubted:
                rows.append((item, label))
        return dataset, rows

    async def tag_predictions(
        self, tenant: str, *, slug: str, tag_id: int
    ) -> tuple[Dataset, list[Predicted]]:
        dataset = await self.tag_in(tenant, tag_id, slug)
        predicted = (await self._predictions(tenant, dataset)).of(tag_id).predicted
        found = await self.repo.items_by_id(tenant, slug, [item_id for item_id, _ in predicted])
        return dataset, [
            Predicted(found[item_id], probability, found[item_id].label(tag_id))
            for item_id, probability in predicted
            if item_id in found
        ]

    async def items(self, tenant: str, *, slug: str, ids: list[int], kind: DatasetType) -> list[Item]:
        """The items of ``ids`` that exist, in that order; ``kind``: text, or pictures (image or face)."""
        dataset = await self.repo.get(tenant, slug)
        if (dataset.type == DatasetType.TEXT) != (kind == DatasetType.TEXT):
            raise WrongDatasetType(f"dataset {slug!r} holds {dataset.type.value} data")
        found = await self.repo.items_by_id(tenant, slug, ids)
        return [found[item_id] for item_id in ids if item_id in found]

    async def image(self, tenant: str, *, slug: str, item_id: int) -> CheckedImage | None:
        """A dataset image's stored copy, or None when the dataset has no such image."""
        found = await self.items(tenant, slug=slug, ids=[item_id], kind=DatasetType.IMAGE)
        if not found or not found[0].media_key:
            return None
        return check_image(await self.media.stored(found[0].media_key), "the stored image")

    async def search(
        self, tenant: str, *, slug: str, query: str, reported: bool | None, tag_id: int | None
    ) -> tuple[Dataset, list[Item]]:
        """Items whose text (or image URL), or a positive tag's title, holds ``query`` after Persian
        normalisation, newest first. ``reported`` true: only reported items; false: only unreported
        ones; None: all. ``tag_id``, unless ``reported`` is false: only the items that tag is
        reported positive for (the document: reports "to which a tag with this id is attached"; a
        negative report says the tag is not)."""
        dataset = await self.repo.get(tenant, slug)
        if tag_id is not None:
            await self.tag_in(tenant, tag_id, slug)
        needle = normalise(query)
        if not needle:
            raise EmptyQuery("query must not be empty")
        titles = {tag.id: normalise(tag.title) for tag in dataset.tags.values()}
        matches = []
        for item in await self.repo.items(tenant, slug):
            if not _in_scope(item, reported, tag_id):
                continue
            tagged = " ".join(titles.get(int(t), "") for t, positive in item.reports.items() if positive)
            if needle in normalise(item.content or item.url) or needle in tagged:
                matches.append(item)
        return dataset, list(reversed(matches))


def _in_scope(item: Item, reported: bool | None, tag_id: int | None) -> bool:
    if reported is not None and bool(item.reports) != reported:
        return False
    # the tag narrows the reported items only (unreported items have no tag to match)
    return tag_id is None or reported is False or item.label(tag_id) is True
