"""Stored media served to its owner (the console's player, Harf's ``media_url``): streamed from
the bucket, with byte ranges.

A player asks for ranges (``Range: bytes=…``) to seek; each answer reads just that range from
the bucket, so seeking in an hour of audio costs a few hundred kilobytes, not the whole file. No
temporary copy is made. One range per request (a multi-range request gets the whole object, as
RFC 9110 allows).
"""

from __future__ import annotations

import re

from fastapi import Request, Response
from fastapi.responses import StreamingResponse

from functions.common.errors import ApiError, NotFound
from functions.common.media_store import MediaStore
from functions.common.render_subtitles import attachment

_RANGE = re.compile(r"^bytes=(\d{0,19})-(\d{0,19})$")  # more digits than any size: not a range we read


class RangeNotSatisfiable(ApiError):
    status = 416


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The first and last byte a ``Range`` header asks for, within ``size``; None for the whole
    object (no header, several ranges, or one this server does not read)."""
    found = _RANGE.match((header or "").replace(" ", ""))
    if found is None or found.group(1) == found.group(2) == "":
        return None
    first, last = found.group(1), found.group(2)
    if first == "":  # the last N bytes
        if int(last) == 0:
            raise RangeNotSatisfiable(f"the range {header!r} asks for no bytes")
        return max(0, size - int(last)), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or end < start:
        raise RangeNotSatisfiable(f"the range {header!r} is outside the media's {size} bytes")
    return start, end


async def media_response(
    request: Request, media: MediaStore, key: str, content_type: str, filename: str, missing: str
) -> Response:
    """The object at ``key`` (or the range asked for), inline under ``filename``; 404 (``missing``)
    when it is not stored."""
    try:
        size = await media.size(key)
    except FileNotFoundError as exc:
        raise NotFound(missing) from exc
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Disposition": attachment(filename, "inline"),
    }
    media_type = content_type or "application/octet-stream"
    if size == 0:
        return Response(b"", media_type=media_type, headers=headers)
    try:
        span = byte_range(request.headers.get("range"), size)
    except RangeNotSatisfiable:
        return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    first, last = span or (0, size - 1)
    headers["Content-Length"] = str(last - first + 1)
    if span is not None:
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    status = 206 if span else 200
    return StreamingResponse(media.chunks(key, first, last), status, headers, media_type)
