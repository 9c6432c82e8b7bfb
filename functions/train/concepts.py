"""From a dataset's items to features, per-tag models and probabilities, for each dataset type.

- text: ``TextFeaturizer`` (Persian-aware character n-gram TF-IDF), fitted on every item of the
  dataset (no labels involved) and stored with the run;
- image: EfficientNet-Lite0 embeddings of the image;
- face: the 128-d dlib embedding of the image's largest face for training (a report names the
  person the picture is of; the largest face is that person in a portrait); at tagging time every
  face is scored and an image's score per tag is the max over its faces.

Embedders load once per worker process (like the ASR engine) and hold no state between events.
"""

from __future__ import annotations

import asyncio
import base64
import functools
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from events.errors import RetryableError
from functions.common.dataset_errors import NotTrained, WrongDatasetType
from functions.common.dataset_runs import TagScore
from functions.common.datasets import Dataset, DatasetRepository, DatasetType, Item, model_key
from functions.train.learner import TagModel, TagRun, train_tag

Matrix = Any  # a scipy sparse matrix or a dense array, rows in item order


@functools.cache
def image_embedder() -> Any:
    from functions.train.features.image import ImageEmbedder

    return ImageEmbedder.load()


@functools.cache
def face_embedder() -> Any:
    from functions.train.features.face import FaceEmbedder

    return FaceEmbedder.load()


def encode_vector(vector: NDArray[np.float32]) -> str:
    return base64.b64encode(np.asarray(vector, dtype=np.float16).tobytes()).decode()


def decode_vector(text: str) -> NDArray[np.float32]:
    return np.frombuffer(base64.b64decode(text), dtype=np.float16).astype(np.float32)


def image_vector(data: bytes, kind: DatasetType) -> str:
    """The cached training feature of one image ("" when a face dataset's image has no face)."""
    if kind == DatasetType.FACE:
        faces = face_embedder().faces(data)
        if not faces:
            return ""
        largest = max(faces, key=lambda face: face.box[2] * face.box[3])
        return encode_vector(largest.vector)
    return encode_vector(image_embedder().embed([data])[0])


@dataclass
class Bundle:
    """One training run's models: what tagging loads (``model.json``)."""

    kind: DatasetType
    featurizer: Any  # TextFeaturizer for texts, None otherwise
    models: dict[int, TagModel]

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.kind.value,
            "featurizer": self.featurizer.to_json() if self.featurizer is not None else None,
            "tags": {str(tag_id): model.to_json() for tag_id, model in self.models.items()},
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Bundle:
        kind = DatasetType(doc["type"])
        featurizer = None
        if doc.get("featurizer") is not None:
            from functions.train.features.text import TextFeaturizer

            featurizer = TextFeaturizer.from_json(doc["featurizer"])
        models = {int(tag_id): TagModel.from_json(model) for tag_id, model in doc["tags"].items()}
        return cls(kind=kind, featurizer=featurizer, models=models)

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
        return self.featurizer.transform(texts)


def text_matrix(items: list[Item]) -> tuple[Any, Matrix]:
    from functions.train.features.text import TextFeaturizer

    texts = [item.content for item in items]
    featurizer = TextFeaturizer.fit(texts)
    return featurizer, featurizer.transform(texts)


def vector_matrix(vectors: list[str]) -> NDArray[np.float32]:
    return np.vstack([decode_vector(vector) for vector in vectors]).astype(np.float32)


def train_tags(
    features: Matrix, item_ids: list[int], labels: dict[int, dict[int, bool]], seed: int = 0
) -> dict[int, TagRun]:
    """One model per tag (``labels``: tag id → item id → positive), CPU-bound: run it off the loop."""
    return {
        tag_id: train_tag(tag_id, features, item_ids, tag_labels, seed=seed)
        for tag_id, tag_labels in labels.items()
    }


BUNDLE_CACHE_SIZE = 8
_bundles: OrderedDict[tuple[str, str, str], Bundle] = OrderedDict()


async def load_bundle(repo: DatasetRepository, tenant: str, dataset: Dataset) -> Bundle:
    """The dataset's latest trained models (cached per process by version: a version never changes)."""
    if not dataset.version:
        raise NotTrained(f"dataset {dataset.slug!r} has no trained model yet")
    cache_key = (tenant, dataset.slug, dataset.version)
    if cache_key in _bundles:
        _bundles.move_to_end(cache_key)
        return _bundles[cache_key]
    doc = await repo.get_json(model_key(tenant, dataset.slug, dataset.version))
    if doc is None:
        raise RetryableError(f"the model of {dataset.slug!r} version {dataset.version} is not readable yet")
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
