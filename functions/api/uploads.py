"""Request bodies to temporary files, streamed, with the size limits enforced while reading."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import Request
from starlette.datastructures import UploadFile

from functions.common.errors import BadRequest, PayloadTooLarge
from functions.common.settings import Settings

CHUNK = 1024 * 1024


def _check_declared_length(request: Request, settings: Settings) -> None:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > settings.max_audio_bytes:
        raise PayloadTooLarge(f"the audio is larger than the limit of {settings.max_audio_bytes} bytes")


async def _spool(chunks: AsyncIterator[bytes], settings: Settings) -> Path:
    handle = tempfile.NamedTemporaryFile(prefix="shenava-upload-", delete=False)  # noqa: SIM115
    path = Path(handle.name)
    size = 0
    try:
        with handle:
            async for chunk in chunks:
                size += len(chunk)
                if size > settings.max_audio_bytes:
                    raise PayloadTooLarge(
                        f"the audio is larger than the limit of {settings.max_audio_bytes} bytes"
                    )
                handle.write(chunk)
        if size < settings.min_audio_bytes:
            raise BadRequest(
                f"the audio is {size} bytes; at least {settings.min_audio_bytes} bytes are required"
            )
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


async def spool_body(request: Request, settings: Settings) -> Path:
    _check_declared_length(request, settings)
    return await _spool(request.stream(), settings)


async def spool_upload(upload: UploadFile, settings: Settings) -> Path:
    async def chunks() -> AsyncIterator[bytes]:
        while chunk := await upload.read(CHUNK):
            yield chunk

    return await _spool(chunks(), settings)
