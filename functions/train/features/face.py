"""Face features for the Kashf dialect: detection with libfacedetection, identity vectors with dlib.

`yuface` (BSD-3-Clause, libfacedetection's CNN with its weights compiled into the library) finds
faces. dlib (`dlib-bin`, Boost licence) places its 5-point landmarks inside each box, aligns the face
with them and runs its ResNet to a 128-d descriptor. Both dlib models come from the PyPI package
`face-recognition-models` (CC0). That package also ships the 68-point predictor, which is trained on
iBUG 300-W (non-commercial terms): it is never loaded here.
"""

from __future__ import annotations

import importlib.util
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy
from PIL import Image

from functions.train.features.image import FeatureError, decode_image

# libfacedetection degrades on inputs above 960 px (yuface warns); larger images are detected on a
# downscaled copy and the boxes scaled back, while dlib still sees the full-resolution pixels.
_DETECT_MAX_SIDE = 960
_MIN_SCORE = 0.5
_SHAPE_MODEL = "shape_predictor_5_face_landmarks.dat"
_RESNET_MODEL = "dlib_face_recognition_resnet_model_v1.dat"


@dataclass(frozen=True)
class Face:
    box: tuple[int, int, int, int]  # x, y, w, h in the source image
    score: float  # detector confidence 0..1
    # Not part of equality or hashing: numpy arrays have neither.
    vector: numpy.ndarray = field(compare=False, repr=False)  # 128-d dlib face descriptor (float32)


def _models_dir() -> Path:
    """Locate the models without importing `face_recognition_models`, whose __init__ needs
    pkg_resources (gone from recent setuptools) only to build these same paths."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or spec.origin is None:
        raise FeatureError("package face-recognition-models is not installed")
    return Path(spec.origin).parent / "models"


def _import_backends() -> tuple[Any, Any]:
    try:
        import dlib
        import yuface
    except ImportError as exc:
        raise FeatureError(f"face backends missing (dlib-bin, yuface): {exc}") from exc
    return dlib, yuface


class FaceEmbedder:
    """Face boxes and 128-d identity descriptors (same person: Euclidean distance below ~0.6).

    Load once with `FaceEmbedder.load()` and keep the instance (about 30 MB of dlib models). dlib's
    objects are not documented as thread-safe, so calls are serialised by a lock.
    """

    dim: int = 128

    def __init__(self, dlib: Any, yuface: Any, shape_predictor: Any, recogniser: Any) -> None:
        self._dlib = dlib
        self._yuface = yuface
        self._shape_predictor = shape_predictor
        self._recogniser = recogniser
        self._lock = threading.Lock()

    @classmethod
    def load(cls, models_dir: Path | None = None) -> FaceEmbedder:
        dlib, yuface = _import_backends()
        folder = models_dir or _models_dir()
        shape_path = folder / _SHAPE_MODEL
        resnet_path = folder / _RESNET_MODEL
        for path in (shape_path, resnet_path):
            if not path.is_file():
                raise FeatureError(f"dlib face model missing: {path}")
        try:
            shape_predictor = dlib.shape_predictor(str(shape_path))
            recogniser = dlib.face_recognition_model_v1(str(resnet_path))
        except RuntimeError as exc:
            raise FeatureError(f"dlib face model unreadable in {folder}: {exc}") from exc
        return cls(dlib, yuface, shape_predictor, recogniser)

    def faces(self, image: bytes) -> list[Face]:
        """Every face found, best score first; [] when there is none."""
        rgb = numpy.asarray(decode_image(image))
        with self._lock:
            detections = self._detect(rgb)
            found = []
            for box, score in detections:
                x, y, w, h = box
                shape = self._shape_predictor(rgb, self._dlib.rectangle(x, y, x + w - 1, y + h - 1))
                descriptor = self._recogniser.compute_face_descriptor(rgb, shape)
                vector = numpy.asarray(descriptor, dtype=numpy.float32)
                found.append(Face(box=box, score=score, vector=vector))
        return sorted(found, key=lambda face: face.score, reverse=True)

    def _detect(self, rgb: numpy.ndarray) -> list[tuple[tuple[int, int, int, int], float]]:
        height, width = rgb.shape[:2]
        scale = min(1.0, _DETECT_MAX_SIDE / max(height, width))
        small = rgb
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            small = numpy.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BILINEAR))
        bgr = numpy.ascontiguousarray(small[:, :, ::-1])
        confidences, boxes, _landmarks = self._yuface.detect(bgr, conf=_MIN_SCORE)
        result = []
        for confidence, raw_box in zip(confidences, boxes, strict=True):
            box = _clip_box([int(v) / scale for v in raw_box], width, height)
            if box is not None:
                result.append((box, min(1.0, int(confidence) / 100.0)))
        return result


def _clip_box(box: list[float], width: int, height: int) -> tuple[int, int, int, int] | None:
    """Clip a detector box to the image: libfacedetection reports faces cut by the border with
    negative or overflowing coordinates."""
    x0 = max(0, round(box[0]))
    y0 = max(0, round(box[1]))
    x1 = min(width, round(box[0] + box[2]))
    y1 = min(height, round(box[1] + box[3]))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    return (x0, y0, x1 - x0, y1 - y0)
