"""A dataset's latest trained models, loaded for tagging: by the train function and by transcribe.

A training run stores one ``model.json`` per version: the dataset type, the text featurizer (text
datasets) and one ``TagModel`` per tag. ``load_bundle`` reads the version a dataset (or a tagging
request) names, once per process (a version never changes); ``Bundle.probabilities`` scores
feature rows per tag and ``scores_at`` keeps a row's tags at or above their thresholds.
``tag_texts`` is the whole path for texts (TRD ``recognition.tasks``).

The model libraries (scikit-learn, SciPy, LightGBM) are imported when a model is loaded, not when
this module is: importing it costs a process nothing until it tags.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from events.errors import RetryableError
from functions.common.dataset_errors import NotTrained, WrongDatasetType
from functions.common.dataset_runs import TagScore
from functions.common.datasets import Dataset, DatasetRepository, DatasetType, model_key

if TYPE_CHECKING:
    from functions.common.tag_model import TagModel
    from functions.common.text_features import TextFeaturizer

Matrix = Any  # a scipy sparse matrix or a dense array, one row per text or picture
BUNDLE_CACHE_SIZE = 8


class ModelNotReadable(RetryableError):
    """A version's model is named but cannot be read yet (its run is still being written)."""


@dataclass
class Bundle:
    """One training run's models: what tagging loads (``model.json``)."""

    kind: DatasetType
    featurizer: TextFeaturizer | None  # text datasets only
    models: dict[int, TagModel]

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.kind.value,
            "featurizer": self.featurizer.to_json() if self.featurizer is not None else None,
            "tags": {str(tag_id): model.to_json() for tag_id, model in self.models.items()},
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Bundle:
        from functions.common.tag_model import TagModel
        from functions.common.text_features import TextFeaturizer

        featurizer = None
        if doc.get("featurizer") is not None:
            featurizer = TextFeaturizer.from_json(doc["featurizer"])
        models = {int(tag_id): TagModel.from_json(model) for tag_id, model in doc["tags"].items()}
        return cls(kind=DatasetType(doc["type"]), featurizer=featurizer, models=models)

    def probabilities(self, features: Matrix) -> dict[int, NDArray[np.float64]]:
        return {
            tag_id: np.asarray(model.predict(features), dtype=np.float64)
            for tag_id, model in self.models.items()
        }

    def scores_at(self, scores: dict[int, Any], row: int) -> tuple[TagScore, ...]:
        """Row ``row``'s tags at or above their thresholds, most probable first."""
        found = [
            TagScore(tag_id=tag_id, probability=round(float(values[row]), 4))
            for tag_id, values in scores.items()
            if values[row] >= self.models[tag_id].threshold
        ]
        return tuple(sorted(found, key=lambda tag: -tag.probability))

    def text_features(self, texts: list[str]) -> Matrix:
        if self.featurizer is None:
            raise WrongDatasetType(f"a {self.kind.value} dataset's models do not read text")
        return self.featurizer.transform(texts)


_bundles: OrderedDict[tuple[str, str, str], Bundle] = OrderedDict()


async def load_bundle(repo: DatasetRepository, tenant: str, dataset: Dataset) -> Bundle:
    """The models of ``dataset.version`` (cached per process by version: a version never changes)."""
    if not dataset.version:
        raise NotTrained(f"dataset {dataset.slug!r} has no trained model yet")
    cache_key = (tenant, dataset.slug, dataset.version)
    if cache_key in _bundles:
        _bundles.move_to_end(cache_key)
        return _bundles[cache_key]
    doc = await repo.get_json(model_key(tenant, dataset.slug, dataset.version))
    if doc is None:
        raise ModelNotReadable(f"the model of {dataset.slug!r} version {dataset.version} is not readable yet")
    bundle = await asyncio.to_thread(Bundle.from_json, doc)
    _bundles[cache_key] = bundle
    while len(_bundles) > BUNDLE_CACHE_SIZE:
        _bundles.popitem(last=False)
    return bundle


async def tag_texts(
    repo: DatasetRepository, tenant: str, slug: str, texts: list[str]
) -> list[list[dict[str, Any]]]:
    """Each text's tags above their thresholds by the dataset's latest models, as TRD's
    ``task_results`` carry them: ``{"id", "probability", "title"}``, most probable first."""
    dataset = await repo.get(tenant, slug)
    if dataset.type != DatasetType.TEXT:
        raise WrongDatasetType(f"dataset {slug!r} holds {dataset.type.value} data, not text")
    bundle = await load_bundle(repo, tenant, dataset)
    if not texts:
        return []
    scores = await asyncio.to_thread(bundle.probabilities, bundle.text_features(texts))
    titles = {tag.id: tag.title for tag in dataset.tags.values()}
    return [
        [
            {"id": tag.tag_id, "probability": round(tag.probability, 2), "title": titles[tag.tag_id]}
            for tag in bundle.scores_at(scores, row)
            if tag.tag_id in titles
        ]
        for row in range(len(texts))
    ]
