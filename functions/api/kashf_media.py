"""The media a Kashf request brings, into the media bucket: images by URL, videos by URL, CSV files.

Every URL goes through ``fetch_file`` (scheme, hops, size and time guards); an image must decode
(``check_image``), a video must have a picture stream (ffprobe). A dataset's media live under
``media_prefix``: images and videos by the hash of their bytes (the same picture is stored once).
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path

from functions.common.bootstrap import Deps
from functions.common.dataset_errors import StoredFileGone
from functions.common.datasets import image_key, media_prefix
from functions.common.fetch import FetchLimits, fetch_file
from functions.common.images import CheckedImage, NotAVideo, fetch_image
from functions.common.media_store import read_bytes
from functions.common.probe import has_video_stream


@dataclass(frozen=True)
class NamedImage:
    """An uploaded image and the name the caller gave its file."""

    name: str
    image: CheckedImage


class MediaIntake:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    @property
    def limits(self) -> FetchLimits:
        return FetchLimits.from_settings(self.deps.settings)

    async def fetch_image(self, url: str) -> CheckedImage:
        return await fetch_image(url, self.limits, self.deps.settings.kashf_max_image_bytes)

    async def store_image(self, tenant: str, slug: str, image: CheckedImage) -> str:
        key = image_key(tenant, slug, image.sha256)
        await self.deps.media.put_bytes(key, image.data, image.content_type)
        return key

    async def store_video(self, tenant: str, slug: str, url: str) -> str:
        """Fetch the video at ``url``, check it has pictures, store it; its media key."""
        with tempfile.TemporaryDirectory(prefix="shenava-video-") as directory:
            target = Path(directory) / "video"
            await fetch_file(url, target, self.limits)
            if not await has_video_stream(target):
                raise NotAVideo(f"{url} is not a video with pictures")
            data = target.read_bytes()
        key = f"{media_prefix(tenant, slug)}videos/{hashlib.sha256(data).hexdigest()}"
        await self.deps.media.put_bytes(key, data, "video/mp4")
        return key

    async def fetch_csv(self, url: str) -> bytes:
        with tempfile.TemporaryDirectory(prefix="shenava-csv-") as directory:
            target = Path(directory) / "import.csv"
            await fetch_file(url, target, self.limits)
            return target.read_bytes()

    async def stored(self, key: str) -> bytes:
        try:
            return await read_bytes(self.deps.media, key)
        except FileNotFoundError as exc:
            raise StoredFileGone("the file is no longer stored") from exc
