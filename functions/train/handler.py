"""The train function: dataset work for Kashf, off the API process.

Consumes ``dataset.tagging.requested`` first (a caller may be waiting), then training, retagging,
export and import requests. Every request carries a ``run_id``; the dataset (or the request or
operation document) records the run it is for, so a redelivered event repeats the same run into
the same keys and a stale one is dropped. Training writes the run's objects first and switches the
dataset's ``version`` last, so tagging never sees a half-written model.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from events.errors import PoisonError, RetryableError
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
from functions.common.datasets import (
    SHARDS,
    UNKNOWN_FACE,
    Dataset,
    DatasetRepository,
    DatasetState,
    DatasetType,
    Evaluation,
    Item,
    features_key,
    model_key,
    operation_key,
    predictions_key,
    request_key,
)
from functions.common.media_store import read_bytes
from functions.train import concepts, csv_rows
from functions.train.concepts import Bundle, load_bundle
from functions.train.features.image import FeatureError
from functions.train.learner import macro

log = logging.getLogger("shenava.train")
EMBED_BATCH = 16  # pictures embedded per call: video frames in batches, memory bounded


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
    repo = DatasetRepository(deps.state)
    if isinstance(event, DatasetTrainRequested | DatasetRetagRequested):

        def failed(dataset: Dataset) -> Dataset | None:
            if dataset.run_id != event.run_id:
                return None
            dataset.state, dataset.failure_reason = DatasetState.FAILED, reason
            return dataset

        await repo.change(event.tenant, event.dataset, failed)
    else:
        key = (request_key if isinstance(event, TaggingRequested) else operation_key)(
            event.tenant, event.dataset, event.run_id
        )

        def mark(doc: dict[str, Any] | None) -> dict[str, Any] | None:
            if doc is None:
                return None
            doc.update(state="failed", failure_reason=reason)
            return doc

        await repo.change_json(key, mark)
    return [done(event, failure=reason)]


# training


async def train(event: DatasetTrainRequested, deps: Deps) -> None:
    repo = DatasetRepository(deps.state)
    dataset = await repo.get(event.tenant, event.dataset)
    if dataset.run_id != event.run_id or dataset.version == event.run_id:
        return  # superseded by a newer request, or this run already finished
    await _set_state(repo, event, DatasetState.TRAINING)
    items = await repo.items(event.tenant, event.dataset)
    tags = dataset.active_tags()
    labels = {
        tag.id: {item.id: label for item in items if (label := item.label(tag.id)) is not None}
        for tag in tags
    }
    if not any(labels.values()):
        raise PoisonError("the dataset has no reports on active tags to train on")
    featurizer, usable, features = await _training_features(dataset, items, repo, deps, event.tenant)
    ids = [item.id for item in usable]
    usable_ids = set(ids)
    labels = {tag_id: {i: v for i, v in found.items() if i in usable_ids} for tag_id, found in labels.items()}
    runs = await asyncio.to_thread(concepts.train_tags, features, ids, labels)
    bundle = Bundle(
        kind=dataset.type, featurizer=featurizer, models={tag_id: run.model for tag_id, run in runs.items()}
    )
    probabilities = await asyncio.to_thread(bundle.probabilities, features)
    predictions = {
        str(tag_id): {
            "predicted": _predicted(ids, probabilities[tag_id], run.model.threshold),
            "notsure": sorted(run.notsure),
        }
        for tag_id, run in runs.items()
    }
    await repo.put_json(model_key(event.tenant, event.dataset, event.run_id), bundle.to_json())
    await repo.put_json(predictions_key(event.tenant, event.dataset, event.run_id), {"tags": predictions})
    evaluations = {tag_id: run.evaluation for tag_id, run in runs.items()}
    overall = macro([e for e in evaluations.values() if e is not None])
    now = deps.clock()

    def trained(current: Dataset) -> Dataset | None:
        if current.run_id != event.run_id:
            return None
        for tag_id, run in runs.items():
            tag = current.tags.get(str(tag_id))
            if tag is not None:
                tag.model = run.model.kind
                found = evaluations[tag_id]
                tag.evaluation = (
                    Evaluation.of_fractions(found.precision, found.recall, found.f1) if found else None
                )
        current.evaluation = Evaluation.of_fractions(overall["precision"], overall["recall"], overall["f1"])
        current.version, current.state, current.trained_at = event.run_id, DatasetState.TRAINED, now
        current.failure_reason = ""
        return current

    await repo.change(event.tenant, event.dataset, trained)
    await repo.mark_processed(event.tenant, event.dataset, usable_ids, now)
    log.info("trained %s/%s run %s on %d items", event.tenant, event.dataset, event.run_id, len(ids))


def _predicted(ids: list[int], probabilities: Any, threshold: float) -> list[list[float]]:
    rows = [
        [item_id, round(float(p), 4)] for item_id, p in zip(ids, probabilities, strict=True) if p >= threshold
    ]
    return sorted(rows, key=lambda row: -row[1])


async def _set_state(repo: DatasetRepository, event: DatasetEvent, state: DatasetState) -> None:
    def move(dataset: Dataset) -> Dataset | None:
        if dataset.run_id != event.run_id:
            return None
        dataset.state = state
        return dataset

    await repo.change(event.tenant, event.dataset, move)


async def _training_features(
    dataset: Dataset, items: list[Item], repo: DatasetRepository, deps: Deps, tenant: str
) -> tuple[Any, list[Item], Any]:
    if dataset.type == DatasetType.TEXT:
        featurizer, matrix = await asyncio.to_thread(concepts.text_matrix, items)
        return featurizer, items, matrix
    vectors = await _image_vectors(dataset, items, repo, deps, tenant)
    usable = [item for item in items if vectors.get(item.id)]
    if not usable:
        raise PoisonError("no image of the dataset could be used (no readable image, or no face found)")
    return None, usable, concepts.vector_matrix([vectors[item.id] for item in usable])


async def _image_vectors(
    dataset: Dataset, items: list[Item], repo: DatasetRepository, deps: Deps, tenant: str
) -> dict[int, str]:
    """Each image's feature, from the per-shard cache or computed now and cached."""
    vectors: dict[int, str] = {}
    for shard in range(SHARDS):
        wanted = [item for item in items if item.id % SHARDS == shard]
        if not wanted:
            continue
        key = features_key(tenant, dataset.slug, shard)
        cached = (await repo.get_json(key)) or {"vectors": {}}
        missing = [item for item in wanted if str(item.id) not in cached["vectors"]]
        for item in missing:
            data = await _media_bytes(deps, item.media_key)
            try:
                cached["vectors"][str(item.id)] = await asyncio.to_thread(
                    concepts.image_vector, data, dataset.type
                )
            except FeatureError as exc:  # an unreadable image is left out, not fatal for the run
                log.warning("image %d of %s left out: %s", item.id, dataset.slug, exc)
                cached["vectors"][str(item.id)] = ""
        if missing:
            await repo.put_json(key, cached)
        vectors.update({item.id: cached["vectors"].get(str(item.id), "") for item in wanted})
    return vectors


async def _media_bytes(deps: Deps, key: str) -> bytes:
    try:
        return await read_bytes(deps.media, key)
    except Exception as exc:
        raise RetryableError(f"cannot read {key} from the media bucket: {exc}") from exc


# retagging


async def retag(event: DatasetRetagRequested, deps: Deps) -> None:
    repo = DatasetRepository(deps.state)
    dataset = await repo.get(event.tenant, event.dataset)
    if dataset.run_id != event.run_id or dataset.state == DatasetState.RETAGGED:
        return
    await _set_state(repo, event, DatasetState.RETAGGING)
    bundle = await load_bundle(repo, event.tenant, dataset)
    items = await repo.items(event.tenant, event.dataset)
    # unreported items first (what a new model most changes), newest first
    chosen = sorted(items, key=lambda item: (bool(item.reports), -item.id))[: event.max_predictions]
    if dataset.type == DatasetType.TEXT:
        features = await asyncio.to_thread(bundle.text_features, [item.content for item in chosen])
    else:
        vectors = await _image_vectors(dataset, chosen, repo, deps, event.tenant)
        chosen = [item for item in chosen if vectors.get(item.id)]
        features = concepts.vector_matrix([vectors[item.id] for item in chosen]) if chosen else None
    ids = [item.id for item in chosen]
    key = predictions_key(event.tenant, event.dataset, dataset.version)
    if ids:
        probabilities = await asyncio.to_thread(bundle.probabilities, features)
        retagged = set(ids)

        def merge(doc: dict[str, Any] | None) -> dict[str, Any]:
            doc = doc or {"tags": {}}
            for tag_id, model in bundle.models.items():
                entry = doc["tags"].setdefault(str(tag_id), {"predicted": [], "notsure": []})
                kept = [row for row in entry["predicted"] if int(row[0]) not in retagged]
                entry["predicted"] = sorted(
                    kept + _predicted(ids, probabilities[tag_id], model.threshold), key=lambda row: -row[1]
                )
            return doc

        await repo.change_json(key, merge)
    now = deps.clock()
    await repo.mark_processed(event.tenant, event.dataset, set(ids), now)
    await _set_state(repo, event, DatasetState.RETAGGED)


# export and import


async def _pending_operation(
    event: DatasetEvent, repo: DatasetRepository
) -> tuple[str, dict[str, Any]] | None:
    """The export or import this event asks for, unless it is gone or already done (a redelivery)."""
    key = operation_key(event.tenant, event.dataset, event.run_id)
    operation = await repo.get_json(key)
    if operation is None or operation.get("state") == "done":
        return None
    return key, operation


async def export(event: DatasetExportRequested, deps: Deps) -> None:
    repo = DatasetRepository(deps.state)
    if (pending := await _pending_operation(event, repo)) is None:
        return
    key, operation = pending
    dataset = await repo.get(event.tenant, event.dataset)
    items = await repo.items(event.tenant, event.dataset)
    text = csv_rows.export_csv(dataset, items, operation["params"], operation["media_base"])
    await deps.media.put_bytes(operation["file_key"], text.encode(), "text/csv; charset=utf-8")
    await _finish_operation(repo, key, {"rows": text.count("\n") - 1})


async def import_rows(event: DatasetImportRequested, deps: Deps) -> None:
    repo = DatasetRepository(deps.state)
    if (pending := await _pending_operation(event, repo)) is None:
        return
    key, operation = pending
    dataset = await repo.get(event.tenant, event.dataset)
    data = await _media_bytes(deps, operation["file_key"])
    outcome = await csv_rows.import_csv(dataset, data, operation["params"], repo, deps, event.tenant)
    await _finish_operation(repo, key, outcome)


async def _finish_operation(repo: DatasetRepository, key: str, outcome: dict[str, Any]) -> None:
    def finish(doc: dict[str, Any] | None) -> dict[str, Any] | None:
        if doc is None:
            return None
        doc.update(outcome, state="done")
        return doc

    await repo.change_json(key, finish)


# tagging


async def tag_request(event: TaggingRequested, deps: Deps) -> None:
    repo = DatasetRepository(deps.state)
    key = request_key(event.tenant, event.dataset, event.run_id)
    request = await repo.get_json(key)
    if request is None or request.get("state") == "done":
        return
    dataset = await repo.get(event.tenant, event.dataset)
    dataset.version = request["version"]  # the version the caller asked against
    bundle = await load_bundle(repo, event.tenant, dataset)
    titles = {int(tag_id): tag.title for tag_id, tag in dataset.tags.items()}
    tagger = Tagger(bundle, titles, deps)
    result = await tagger.answer(request["kind"], request["inputs"], request.get("params", {}))

    def finish(doc: dict[str, Any] | None) -> dict[str, Any] | None:
        if doc is None:
            return None
        doc.update(state="done", result=result, finished_at=deps.clock().isoformat())
        return doc

    await repo.change_json(key, finish)


class Tagger:
    """Answers one tagging request in the document's shapes, with the probability of each tag."""

    def __init__(self, bundle: Bundle, titles: dict[int, str], deps: Deps) -> None:
        self.bundle = bundle
        self.titles = titles
        self.deps = deps

    async def answer(
        self, kind: str, inputs: list[dict[str, Any]], params: dict[str, Any]
    ) -> list[dict[str, Any]]:
        if kind == "texts":
            features = await asyncio.to_thread(
                self.bundle.text_features, [entry["content"] for entry in inputs]
            )
            scores = await asyncio.to_thread(self.bundle.probabilities, features)
            return [
                {"content": entry["content"], "tags": self.bundle.tags_at(scores, n, self.titles)}
                for n, entry in enumerate(inputs)
            ]
        if kind in {"images", "faces"}:
            pictures = [await _media_bytes(self.deps, entry["media_key"]) for entry in inputs]
            tagged = await self.pictures_tags(pictures)
            return [
                {"image_url": entry["url"], "tags": tags} for entry, tags in zip(inputs, tagged, strict=True)
            ]
        if kind in {"video_frames", "video_faces"}:
            return [
                {"video_url": entry["url"], "frames": await self.video_frames(entry["media_key"], params)}
                for entry in inputs
            ]
        if kind == "videos":
            answers = []
            for entry in inputs:
                frames = await self.video_frames(entry["media_key"], params, keep_unknown=False)
                answers.append(
                    {"image_url": entry["url"], "video_url": entry["url"], "tags": _strongest(frames)}
                )
            return answers
        raise PoisonError(f"unknown tagging request kind {kind!r}")

    async def pictures_tags(self, pictures: list[bytes]) -> list[list[dict[str, Any]]]:
        """Each picture's tags; unreadable bytes end the request (retrying cannot read them)."""
        try:
            if self.bundle.kind == DatasetType.FACE:
                return [await self.face_tags(picture) for picture in pictures]
            answers: list[list[dict[str, Any]]] = []
            for start in range(0, len(pictures), EMBED_BATCH):  # a batch per call, memory bounded
                batch = pictures[start : start + EMBED_BATCH]
                matrix = await asyncio.to_thread(concepts.image_embedder().embed, batch)
                scores = await asyncio.to_thread(self.bundle.probabilities, matrix)
                answers += [self.bundle.tags_at(scores, row, self.titles) for row in range(len(batch))]
            return answers
        except FeatureError as exc:
            raise PoisonError(str(exc)) from exc

    async def face_tags(self, picture: bytes) -> list[dict[str, Any]]:
        """A picture's score per tag is its best face's; the unknown face when no tag passes."""
        faces = await asyncio.to_thread(concepts.face_embedder().faces, picture)
        found: list[dict[str, Any]] = []
        if faces:
            matrix = np.vstack([face.vector for face in faces]).astype(np.float32)
            scores = await asyncio.to_thread(self.bundle.probabilities, matrix)
            best = {tag_id: np.array([values.max()]) for tag_id, values in scores.items()}
            found = self.bundle.tags_at(best, 0, self.titles)
        return found or [{"id": UNKNOWN_FACE[0], "probability": 1.0, "title": UNKNOWN_FACE[1]}]

    async def video_frames(
        self, media_key: str, params: dict[str, Any], keep_unknown: bool = True
    ) -> list[dict[str, Any]]:
        from functions.train.features.video import clock, sample_frames

        with tempfile.TemporaryDirectory(prefix="shenava-video-") as directory:
            path = Path(directory) / "video"
            await self.deps.media.download(media_key, path)
            try:
                frames = await asyncio.to_thread(
                    sample_frames, path, params["every_ms"], params["min_frame_diff"], params["duration"]
                )
            except (ValueError, FeatureError) as exc:
                raise PoisonError(str(exc)) from exc
        answers = []
        for frame, tags in zip(frames, await self.pictures_tags([f.jpeg for f in frames]), strict=True):
            if not keep_unknown:
                tags = [tag for tag in tags if tag["id"] != UNKNOWN_FACE[0]]
            answers.append({"frame": frame.index, "time": clock(frame.seconds), "tags": tags})
        return answers


def _strongest(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A whole video's tags: each tag seen on a frame, with its highest probability over the frames."""
    best: dict[int, dict[str, Any]] = {}
    for frame in frames:
        for tag in frame["tags"]:
            if tag["id"] not in best or tag["probability"] > best[tag["id"]]["probability"]:
                best[tag["id"]] = tag
    return sorted(best.values(), key=lambda tag: -tag["probability"])


SPEC = FunctionSpec(TRAIN, handle, on_failure, order=TRAIN_ORDER)
