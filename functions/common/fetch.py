"""Downloading a user-given media URL into a local file, safely, for any dialect that takes URLs.

Stages, each with a limit:
1. **Scheme.** Only absolute ``http``/``https`` URLs; ``file:``, ``ftp:`` and the like are refused.
2. **Hops.** Redirects are followed here, one hop at a time, at most ``max_redirects``: every hop
   is a new request through ``outbound_client``, whose connection checks the address actually
   connected to (private, loopback and link-local refused unless allowlisted). So a public URL
   that redirects to ``127.0.0.1`` or ``169.254.169.254`` is refused at that hop, and a hop to
   ``file:`` is refused by its scheme.
3. **Size.** A declared ``Content-Length`` over the cap is refused before reading; the body is
   streamed to disk and counted, so a server that lies or sends no length is cut off at the cap.
4. **Time.** One deadline for the whole fetch, all hops and the body included (a server dripping
   one byte a second cannot hold it open), plus httpx's per-read timeouts.
5. **Content.** ffprobe sniffs the file: what is not readable audio or video, or has no audio
   track, is refused before a job exists.

Errors are ``ApiError`` subclasses naming the URL, so every dialect renders them as 4xx.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urljoin, urlsplit

import httpx

from events.errors import PoisonError
from functions.common.errors import BadRequest, OutboundRefused, PayloadTooLarge, Unprocessable
from functions.common.outbound import check_url, outbound_client
from functions.common.probe import Probe, probe
from functions.common.settings import Settings

CHUNK = 256 * 1024
READ_TIMEOUT_S = 30.0  # one read or connect; the whole fetch has its own deadline
MEDIA_TYPES = ("audio/", "video/")


class FetchError(BadRequest):
    """The URL could not be downloaded (refused, unreachable, an HTTP error, too slow)."""


class FetchTooLarge(PayloadTooLarge):
    """The URL's body is larger than the media size limit."""


class NotMedia(Unprocessable):
    """The URL's body is not audio or video that can be transcribed."""


@dataclass(frozen=True)
class FetchLimits:
    allowlist: str
    max_bytes: int
    timeout_s: float
    max_redirects: int = 5

    @classmethod
    def from_settings(cls, settings: Settings) -> FetchLimits:
        return cls(
            allowlist=settings.outbound_allowlist,
            max_bytes=settings.max_audio_bytes,
            timeout_s=settings.fetch_timeout_s,
            max_redirects=settings.fetch_max_redirects,
        )


@dataclass(frozen=True)
class FetchedMedia:
    url: str  # as given
    final_url: str  # after redirects
    path: Path
    content_type: str
    filename: str
    facts: Probe


async def fetch_media(url: str, directory: Path, limits: FetchLimits) -> FetchedMedia:
    """Download ``url`` into ``directory`` (hop by hop, guarded, capped, timed) and sniff it."""
    target = directory / "media"
    final_url, content_type = await fetch_file(url, target, limits)
    try:
        facts = await probe(target)
    except PoisonError as exc:
        raise NotMedia(f"{url} is not usable media: {exc}") from exc
    return FetchedMedia(
        url=url,
        final_url=final_url,
        path=target,
        content_type=content_type if content_type.startswith(MEDIA_TYPES) else "application/octet-stream",
        filename=filename_of(final_url),
        facts=facts,
    )


async def fetch_file(url: str, target: Path, limits: FetchLimits) -> tuple[str, str]:
    """Download ``url`` to ``target`` with every guard but the media sniff: (final URL, content type)."""
    try:
        async with asyncio.timeout(limits.timeout_s):
            return await _download(url, target, limits)
    except TimeoutError as exc:
        raise FetchError(f"{url} took longer than {limits.timeout_s:g} s to download") from exc


def filename_of(url: str) -> str:
    name = PurePosixPath(unquote(urlsplit(url).path)).name
    return name or "media"


async def _download(url: str, target: Path, limits: FetchLimits) -> tuple[str, str]:
    """Follow redirects ourselves so each hop's scheme and address are checked; save the body."""
    current = url
    async with outbound_client(limits.allowlist, timeout_s=min(READ_TIMEOUT_S, limits.timeout_s)) as client:
        for _ in range(limits.max_redirects + 1):
            _check_scheme(url, current)
            try:
                async with client.stream("GET", current) as response:
                    if response.has_redirect_location:
                        current = urljoin(current, response.headers["location"])
                        continue
                    if response.status_code != 200:
                        raise FetchError(f"{url} answered HTTP {response.status_code}")
                    await _save(url, response, target, limits.max_bytes)
                    return current, response.headers.get("content-type", "").split(";")[0].strip().lower()
            except OutboundRefused as exc:
                raise FetchError(f"{url} is refused: {exc}") from exc
            except httpx.HTTPError as exc:
                raise FetchError(f"{url} could not be downloaded ({type(exc).__name__}: {exc})") from exc
    raise FetchError(f"{url} redirects more than {limits.max_redirects} times")


def _check_scheme(url: str, hop: str) -> None:
    try:
        check_url(hop)
    except OutboundRefused as exc:
        where = "" if hop == url else f" (redirected to {hop})"
        raise FetchError(f"{url} is refused{where}: {exc}") from exc


async def _save(url: str, response: httpx.Response, target: Path, max_bytes: int) -> None:
    too_large = f"{url} is larger than the limit of {max_bytes} bytes"
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise FetchTooLarge(too_large)
    size = 0
    with target.open("wb") as out:
        async for chunk in response.aiter_bytes(CHUNK):
            size += len(chunk)
            if size > max_bytes:
                raise FetchTooLarge(too_large)
            out.write(chunk)
    if size == 0:
        raise NotMedia(f"{url} returned an empty body")
