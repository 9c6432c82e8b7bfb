"""From a dataset's items to features, per-tag models and probabilities, for each dataset type.

- text: ``TextFeaturizer`` (Persian-aware character n-gram TF-IDF), fitted on every item of the
  dataset (no labels involved) and stored with the run;
- image: EfficientNet-Lite0 embeddings of the image;
- face: the 128-d dlib embedding of the image's largest face for training (a report names the
  person the picture is of; the largest face is that person in a portrait); at tagging time every
  face is scored and an image's score per tag is the max over its faces.

Embedders load once per worker process (like the ASR engine) and hold no state between events.
What tagging loads back (``Bundle``, ``load_bundle``) is ``functions.common.concepts``.
"""

from __future__ import annotations

import base64
import functools
from typing import Any

import numpy as np
from numpy.typing import NDArray

from functions.common.concepts import Matrix
from functions.common.datasets import DatasetType, Item
from functions.common.text_features import TextFeaturizer
from functions.train import learner
from functions.train.learner import DatasetRuns


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


def text_matrix(items: list[Item]) -> tuple[TextFeaturizer, Matrix]:
    texts = [item.content for item in items]
    featurizer = TextFeaturizer.fit(texts)
    return featurizer, featurizer.transform(texts)


def vector_matrix(vectors: list[str]) -> NDArray[np.float32]:
    return np.vstack([decode_vector(vector) for vector in vectors]).astype(np.float32)


def train_tags(
    features: Matrix, item_ids: list[int], labels: dict[int, dict[int, bool]], seed: int = 0
) -> DatasetRuns:
    """One model per tag (``labels``: tag id → item id → positive), the learner chosen for the
    dataset by cross-validation (``learner``). CPU-bound: run it off the loop."""
    return learner.train_tags(features, item_ids, labels, seed=seed)
