"""Images a caller names by URL or uploads: fetched with the media guards, checked to be images."""

from __future__ import annotations

import hashlib
import io
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from functions.common.errors import Unprocessable
from functions.common.fetch import FetchLimits, fetch_file


class NotAnImage(Unprocessable):
    """The bytes are not an image Shenava can read."""


class NotAVideo(Unprocessable):
    """The bytes are not a video with a picture stream."""


@dataclass(frozen=True)
class CheckedImage:
    data: bytes
    width: int
    height: int
    format: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def content_type(self) -> str:
        return f"image/{self.format.lower()}"


def check_image(data: bytes, name: str) -> CheckedImage:
    """``data`` decoded far enough to know it is a whole image; ``NotAnImage`` naming ``name`` if not."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            return CheckedImage(
                data=data, width=image.width, height=image.height, format=image.format or "jpeg"
            )
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise NotAnImage(f"{name} is not a readable image ({type(exc).__name__})") from exc


async def fetch_image(url: str, limits: FetchLimits, max_bytes: int) -> CheckedImage:
    with tempfile.TemporaryDirectory(prefix="shenava-image-") as directory:
        target = Path(directory) / "image"
        await fetch_file(url, target, replace(limits, max_bytes=max_bytes))
        return check_image(target.read_bytes(), url)
