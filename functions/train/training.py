"""Training and retagging a dataset: features, per-tag models, predictions, the new version.

Training: the dataset's items and reports → features (text n-grams fitted on every item, or cached
image/face embeddings) → one model per active tag (``concepts.train_tags``) → the run's model and
predictions written under the run id → the dataset switched to that version last, so tagging never
sees a half-written run. Retagging scores up to ``max_predictions`` items (unreported first) with
the current version and merges them into its predictions.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from events.models import DatasetEvent, DatasetRetagRequested, DatasetTrainRequested
from functions.common.bootstrap import Deps
from functions.common.concepts import Bundle, Matrix, load_bundle
from functions.common.dataset_errors import NothingToTrain
from functions.common.dataset_runs import Predictions, RunDocuments, TagPredictions
from functions.common.datasets import (
    SHARDS,
    Dataset,
    DatasetRepository,
    DatasetState,
    DatasetType,
    Evaluation,
    Item,
    features_key,
    model_key,
)
from functions.train import concepts
from functions.train.features.image import FeatureError
from functions.train.learner import DatasetRuns, TagRun, macro
from functions.train.media import read_media

log = logging.getLogger("shenava.train")

Labels = dict[int, dict[int, bool]]  # tag id → item id → positive


@dataclass(frozen=True)
class Features:
    featurizer: Any  # the text featurizer of the run, None for images and faces
    items: list[Item]  # the items with a usable feature, in row order
    matrix: Matrix

    @property
    def ids(self) -> list[int]:
        return [item.id for item in self.items]


async def train(event: DatasetTrainRequested, deps: Deps) -> None:
    repo = DatasetRepository(deps.state)
    dataset = await repo.get(event.tenant, event.dataset)
    if dataset.run_id != event.run_id or dataset.version == event.run_id:
        return  # superseded by a newer request, or this run already finished
    await set_state(repo, event, DatasetState.TRAINING)
    items = await repo.items(event.tenant, event.dataset)
    labels = _labels(dataset, items)
    features = await _training_features(dataset, items, repo, deps, event.tenant)
    usable = set(features.ids)
    labels = {tag_id: {i: v for i, v in found.items() if i in usable} for tag_id, found in labels.items()}
    trained = await asyncio.to_thread(concepts.train_tags, features.matrix, features.ids, labels)
    _log_choice(event, trained)
    runs = trained.runs
    models = {tag_id: run.model for tag_id, run in runs.items()}
    bundle = Bundle(kind=dataset.type, featurizer=features.featurizer, models=models)
    probabilities = await asyncio.to_thread(bundle.probabilities, features.matrix)
    predictions = Predictions(
        tags={
            str(tag_id): TagPredictions(
                predicted=_predicted(features.ids, probabilities[tag_id], run.model.threshold),
                notsure=tuple(sorted(run.notsure)),
            )
            for tag_id, run in runs.items()
        }
    )
    await repo.put_json(model_key(event.tenant, event.dataset, event.run_id), bundle.to_json())
    await RunDocuments(deps.state).put_predictions(event.tenant, event.dataset, event.run_id, predictions)
    now = deps.clock()
    await repo.change(event.tenant, event.dataset, _trained(event.run_id, runs, now))
    await repo.mark_processed(event.tenant, event.dataset, usable, now)
    log.info("trained %s/%s run %s on %d items", event.tenant, event.dataset, event.run_id, len(usable))


def _log_choice(event: DatasetTrainRequested, trained: DatasetRuns) -> None:
    if trained.learner is not None:
        scores = {learner: round(value, 4) for learner, value in trained.brier.items()}
        log.info(
            "%s/%s run %s: %s chosen (mean out-of-fold Brier score %s)",
            event.tenant, event.dataset, event.run_id, trained.learner, scores,
        )  # fmt: skip


def _labels(dataset: Dataset, items: list[Item]) -> Labels:
    labels = {
        tag.id: {item.id: label for item in items if (label := item.label(tag.id)) is not None}
        for tag in dataset.active_tags()
    }
    if not any(labels.values()):
        raise NothingToTrain("the dataset has no reports on active tags to train on")
    return labels


def _trained(run_id: str, runs: dict[int, TagRun], now: datetime) -> Callable[[Dataset], Dataset | None]:
    """The dataset switched to the finished run: its version, evaluations and the tags' model kinds."""
    evaluations = {tag_id: run.evaluation for tag_id, run in runs.items()}
    overall = macro([e for e in evaluations.values() if e is not None])

    def switch(current: Dataset) -> Dataset | None:
        if current.run_id != run_id:
            return None
        for tag_id, run in runs.items():
            tag = current.tags.get(str(tag_id))
            if tag is None:
                continue  # deleted while training
            found = evaluations[tag_id]
            tag.model = run.model.kind
            tag.evaluation = (
                Evaluation.of_fractions(found.precision, found.recall, found.f1) if found else None
            )
        current.evaluation = Evaluation.of_fractions(overall["precision"], overall["recall"], overall["f1"])
        current.version, current.state, current.trained_at = run_id, DatasetState.TRAINED, now
        current.failure_reason = ""
        return current

    return switch


def _predicted(ids: list[int], probabilities: Any, threshold: float) -> tuple[tuple[int, float], ...]:
    rows = [
        (item_id, round(float(p), 4)) for item_id, p in zip(ids, probabilities, strict=True) if p >= threshold
    ]
    return tuple(sorted(rows, key=lambda row: -row[1]))


async def set_state(repo: DatasetRepository, event: DatasetEvent, state: DatasetState) -> None:
    def move(dataset: Dataset) -> Dataset | None:
        if dataset.run_id != event.run_id:
            return None
        dataset.state = state
        return dataset

    await repo.change(event.tenant, event.dataset, move)


async def _training_features(
    dataset: Dataset, items: list[Item], repo: DatasetRepository, deps: Deps, tenant: str
) -> Features:
    if dataset.type == DatasetType.TEXT:
        featurizer, matrix = await asyncio.to_thread(concepts.text_matrix, items)
        return Features(featurizer, items, matrix)
    vectors = await _image_vectors(dataset, items, repo, deps, tenant)
    usable = [item for item in items if vectors.get(item.id)]
    if not usable:
        raise NothingToTrain("no image of the dataset could be used (no readable image, or no face found)")
    return Features(None, usable, concepts.vector_matrix([vectors[item.id] for item in usable]))


async def _image_vectors(
    dataset: Dataset, items: list[Item], repo: DatasetRepository, deps: Deps, tenant: str
) -> dict[int, str]:
    """Each image's feature, from the per-shard cache or computed now and cached ("" if unusable)."""
    vectors: dict[int, str] = {}
    for shard in range(SHARDS):
        wanted = [item for item in items if item.id % SHARDS == shard]
        if not wanted:
            continue
        key = features_key(tenant, dataset.slug, shard)
        cached: dict[str, str] = ((await repo.get_json(key)) or {}).get("vectors", {})
        missing = [item for item in wanted if str(item.id) not in cached]
        for item in missing:
            cached[str(item.id)] = await _image_vector(deps, item, dataset)
        if missing:
            await repo.put_json(key, {"vectors": cached})
        vectors.update({item.id: cached.get(str(item.id), "") for item in wanted})
    return vectors


async def _image_vector(deps: Deps, item: Item, dataset: Dataset) -> str:
    data = await read_media(deps, item.media_key)
    try:
        return await asyncio.to_thread(concepts.image_vector, data, dataset.type)
    except FeatureError as exc:  # an unreadable image is left out, not fatal for the run
        log.warning("image %d of %s left out: %s", item.id, dataset.slug, exc)
        return ""


async def retag(event: DatasetRetagRequested, deps: Deps) -> None:
    repo = DatasetRepository(deps.state)
    dataset = await repo.get(event.tenant, event.dataset)
    if dataset.run_id != event.run_id or dataset.state == DatasetState.RETAGGED:
        return
    await set_state(repo, event, DatasetState.RETAGGING)
    bundle = await load_bundle(repo, event.tenant, dataset)
    items = await repo.items(event.tenant, event.dataset)
    # unreported items first (what a new model most changes), newest first
    chosen = sorted(items, key=lambda item: (bool(item.reports), -item.id))[: event.max_predictions]
    scored = await _retag_features(dataset, chosen, bundle, repo, deps, event.tenant)
    if scored.items:
        probabilities = await asyncio.to_thread(bundle.probabilities, scored.matrix)
        fresh = {
            tag_id: _predicted(scored.ids, probabilities[tag_id], model.threshold)
            for tag_id, model in bundle.models.items()
        }
        await RunDocuments(deps.state).change_predictions(
            event.tenant, event.dataset, dataset.version, _merged(fresh, set(scored.ids))
        )
    await repo.mark_processed(event.tenant, event.dataset, set(scored.ids), deps.clock())
    await set_state(repo, event, DatasetState.RETAGGED)


async def _retag_features(
    dataset: Dataset, chosen: list[Item], bundle: Bundle, repo: DatasetRepository, deps: Deps, tenant: str
) -> Features:
    if dataset.type == DatasetType.TEXT:
        matrix = await asyncio.to_thread(bundle.text_features, [item.content for item in chosen])
        return Features(None, chosen, matrix)
    vectors = await _image_vectors(dataset, chosen, repo, deps, tenant)
    usable = [item for item in chosen if vectors.get(item.id)]
    matrix = concepts.vector_matrix([vectors[item.id] for item in usable]) if usable else None
    return Features(None, usable, matrix)


def _merged(
    fresh: dict[int, tuple[tuple[int, float], ...]], retagged: set[int]
) -> Callable[[Predictions], Predictions]:
    """The predictions with the retagged items' rows replaced by ``fresh`` ones."""

    def merge(predictions: Predictions) -> Predictions:
        tags = dict(predictions.tags)
        for tag_id, rows in fresh.items():
            current = predictions.of(tag_id)
            kept = [row for row in current.predicted if row[0] not in retagged]
            predicted = tuple(sorted([*kept, *rows], key=lambda row: -row[1]))
            tags[str(tag_id)] = current.model_copy(update={"predicted": predicted})
        return Predictions(tags=tags)

    return merge
