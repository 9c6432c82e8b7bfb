"""The train function's reads of the media bucket: a missing object is poison, a failing read is retried."""

from __future__ import annotations

from pathlib import Path

from functions.common.bootstrap import Deps
from functions.common.media_store import read_bytes
from functions.train.errors import MediaGone, MediaUnavailable


async def read_media(deps: Deps, key: str) -> bytes:
    try:
        return await read_bytes(deps.media, key)
    except FileNotFoundError as exc:
        raise MediaGone(f"{key} is no longer in the media bucket") from exc
    except Exception as exc:
        raise MediaUnavailable(f"cannot read {key} from the media bucket: {exc}") from exc


async def download_media(deps: Deps, key: str, path: Path) -> None:
    try:
        await deps.media.download(key, path)
    except FileNotFoundError as exc:
        raise MediaGone(f"{key} is no longer in the media bucket") from exc
