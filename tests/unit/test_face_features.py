"""Face detection (yuface) and dlib descriptors on two public-domain portraits (see
tests/data/kashf/LICENSE.md): Eileen Collins (NASA) and Grace Hopper (U.S. Navy)."""

from __future__ import annotations

import io
import itertools
from pathlib import Path

import numpy
import pytest
from PIL import Image, ImageEnhance, ImageOps

from functions.train.features.face import Face, FaceEmbedder
from functions.train.features.image import FeatureError
from tests.media_fixtures import blank_image, scene_image, to_jpeg

DATA = Path(__file__).resolve().parent.parent / "data" / "kashf"
SAME_PERSON = 0.6  # dlib's documented threshold for its 128-d descriptors


@pytest.fixture(scope="module")
def embedder() -> FaceEmbedder:
    return FaceEmbedder.load()


def _variants(path: Path) -> dict[str, bytes]:
    """The kinds of change the same person's photos show: framing, scale, mirror, light, tilt."""
    image = Image.open(path).convert("RGB")
    width, height = image.size
    return {
        "original": to_jpeg(image),
        "crop": to_jpeg(image.crop((width // 6, 0, width * 5 // 6, height * 2 // 3))),
        "half size": to_jpeg(image.resize((width // 2, height // 2))),
        "double size": to_jpeg(image.resize((width * 2, height * 2))),
        "mirrored": to_jpeg(ImageOps.mirror(image)),
        "darker": to_jpeg(ImageEnhance.Brightness(image).enhance(0.6)),
        "tilted 8 degrees": to_jpeg(image.rotate(8, resample=Image.Resampling.BICUBIC)),
    }


@pytest.fixture(scope="module")
def variant_vectors(embedder: FaceEmbedder) -> dict[str, dict[str, numpy.ndarray]]:
    """Descriptors of every variant of both portraits, computed once for the tests below."""
    return {
        portrait: {
            name: _one_face(embedder, image).vector for name, image in _variants(DATA / portrait).items()
        }
        for portrait in ("astronaut.jpg", "grace_hopper.jpg")
    }


def _one_face(embedder: FaceEmbedder, image: bytes) -> Face:
    found = embedder.faces(image)
    assert len(found) == 1, [face.box for face in found]
    return found[0]


def test_finds_the_astronaut_face_with_a_sensible_box(embedder: FaceEmbedder) -> None:
    face = _one_face(embedder, (DATA / "astronaut.jpg").read_bytes())
    x, y, w, h = face.box
    # Her face spans about x 175..270, y 60..180 of the 512x512 portrait (eyes near y 100).
    assert 150 <= x <= 200 and 40 <= y <= 90
    assert 70 <= w <= 130 and 80 <= h <= 150
    assert 0.5 <= face.score <= 1.0
    assert embedder.dim == 128
    assert face.vector.shape == (128,) and face.vector.dtype == numpy.float32


def test_box_is_in_source_pixels_for_images_detected_downscaled(embedder: FaceEmbedder) -> None:
    """Above 960 px the detector runs on a smaller copy; the box must still be in the caller's pixels."""
    small = _one_face(embedder, (DATA / "astronaut.jpg").read_bytes()).box
    image = Image.open(DATA / "astronaut.jpg").convert("RGB")
    large = _one_face(embedder, to_jpeg(image.resize((2048, 2048)))).box
    for small_value, large_value in zip(small, large, strict=True):
        assert abs(large_value - 4 * small_value) <= 16


def test_phone_photo_stored_sideways_is_turned_upright(embedder: FaceEmbedder) -> None:
    """Phones save portraits rotated with an EXIF orientation tag; the face must still be found,
    with its box in the upright image a viewer sees."""
    image = Image.open(DATA / "astronaut.jpg").convert("RGB")
    sideways = image.transpose(Image.Transpose.ROTATE_90)  # stored rotated 90° counter-clockwise
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to display
    buffer = io.BytesIO()
    sideways.save(buffer, "JPEG", quality=90, exif=exif)
    upright = _one_face(embedder, (DATA / "astronaut.jpg").read_bytes()).box
    turned = _one_face(embedder, buffer.getvalue()).box
    for expected, found in zip(upright, turned, strict=True):
        assert abs(expected - found) <= 8


@pytest.mark.parametrize("image", [blank_image(), scene_image("sky", 0), scene_image("checkerboard", 1)])
def test_no_face_in_generated_non_face_images(embedder: FaceEmbedder, image: bytes) -> None:
    assert embedder.faces(image) == []


@pytest.mark.parametrize("portrait", ["astronaut.jpg", "grace_hopper.jpg"])
def test_variants_of_one_face_stay_within_dlib_same_person_distance(
    variant_vectors: dict[str, dict[str, numpy.ndarray]], portrait: str
) -> None:
    vectors = variant_vectors[portrait]
    for (name_a, a), (name_b, b) in itertools.combinations(vectors.items(), 2):
        distance = float(numpy.linalg.norm(a - b))
        assert distance < SAME_PERSON, f"{portrait}: {name_a} vs {name_b} at {distance:.3f}"


def test_two_people_are_further_apart_than_any_variants_of_one(
    variant_vectors: dict[str, dict[str, numpy.ndarray]],
) -> None:
    collins = list(variant_vectors["astronaut.jpg"].values())
    hopper = list(variant_vectors["grace_hopper.jpg"].values())
    within = [
        float(numpy.linalg.norm(a - b))
        for group in (collins, hopper)
        for a, b in itertools.combinations(group, 2)
    ]
    between = [float(numpy.linalg.norm(a - b)) for a in collins for b in hopper]
    assert min(between) > SAME_PERSON
    assert min(between) > max(within)


@pytest.mark.parametrize("data", [b"", b"GIF89a but no picture", bytes(range(256))])
def test_non_image_bytes_raise_feature_error(embedder: FaceEmbedder, data: bytes) -> None:
    with pytest.raises(FeatureError, match="not an image"):
        embedder.faces(data)


def test_missing_models_raise_feature_error(tmp_path: Path) -> None:
    with pytest.raises(FeatureError, match="missing"):
        FaceEmbedder.load(tmp_path)


def test_faces_come_best_score_first_with_boxes_inside_the_image(embedder: FaceEmbedder) -> None:
    """Two portraits side by side: both found, boxes within the canvas, sorted by score."""
    collins = Image.open(DATA / "astronaut.jpg").convert("RGB")
    hopper = Image.open(DATA / "grace_hopper.jpg").convert("RGB")
    canvas = Image.new("RGB", (collins.width + hopper.width, max(collins.height, hopper.height)))
    canvas.paste(collins, (0, 0))
    canvas.paste(hopper, (collins.width, 0))
    buffer = io.BytesIO()
    canvas.save(buffer, "PNG")
    found = embedder.faces(buffer.getvalue())
    assert len(found) == 2
    assert [face.score for face in found] == sorted((face.score for face in found), reverse=True)
    assert {face.box[0] < collins.width for face in found} == {True, False}
    for face in found:
        x, y, w, h = face.box
        assert x >= 0 and y >= 0 and x + w <= canvas.width and y + h <= canvas.height
