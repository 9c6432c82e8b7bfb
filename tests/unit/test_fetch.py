"""Downloading media URLs: every hop guarded, the body capped and timed, the content sniffed.

A real HTTP server on loopback plays the remote side. With the allowlist ``localhost`` the
server is reachable by that name only, so a redirect to ``127.0.0.1`` is a redirect to a
refused loopback address.
"""

from __future__ import annotations

import asyncio
import math
import struct
import subprocess
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from functions.common.fetch import FetchError, FetchLimits, FetchTooLarge, NotMedia, fetch_media
from functions.common.probe import normalise
from tests.http_stubs import answer

LIMIT = 200_000


def tone_wav(seconds: float = 1.0, rate: int = 16000) -> bytes:
    samples = [round(8000 * math.sin(2 * math.pi * 440 * i / rate)) for i in range(int(seconds * rate))]
    pcm = struct.pack(f"<{len(samples)}h", *samples)
    header = b"RIFF" + struct.pack("<I", 36 + len(pcm)) + b"WAVEfmt "
    header += struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16) + b"data" + struct.pack("<I", len(pcm))
    return header + pcm


def silent_video(path: Path) -> bytes:
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "color=c=blue:s=64x64:d=1",
         "-pix_fmt", "yuv420p", str(path)],
        check=True,
    )  # fmt: skip
    return path.read_bytes()


class Remote:
    def __init__(self, tmp: Path) -> None:
        self.wav = tone_wav()
        self.video = silent_video(tmp / "silent.mp4")
        self.release = asyncio.Event()
        self.port = 0
        self.extra: dict[str, bytes] = {}  # more files, by path, added by tests

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get(
            "/speech.wav", answer(lambda r: web.Response(body=self.wav, content_type="audio/wav"))
        )
        app.router.add_get("/redirect", answer(lambda r: web.HTTPFound("/speech.wav")))
        app.router.add_get(
            "/to-loopback", answer(lambda r: web.HTTPFound(f"http://127.0.0.1:{self.port}/speech.wav"))
        )
        app.router.add_get("/to-file", answer(lambda r: web.HTTPFound("file:///etc/passwd")))
        app.router.add_get("/loop", answer(lambda r: web.HTTPFound("/loop")))
        app.router.add_get(
            "/page", answer(lambda r: web.Response(text="<html>hello</html>" * 20, content_type="text/html"))
        )
        app.router.add_get("/empty", answer(lambda r: web.Response(body=b"", content_type="audio/wav")))
        app.router.add_get(
            "/video", answer(lambda r: web.Response(body=self.video, content_type="video/mp4"))
        )
        app.router.add_get("/big", self.big)
        app.router.add_get("/chunked", self.chunked)
        app.router.add_get("/stall", self.stall)
        app.router.add_get("/{name}", self.file)
        return app

    async def file(self, request: web.Request) -> web.StreamResponse:
        body = self.extra.get(request.path)
        if body is None:
            raise web.HTTPNotFound()
        return web.Response(body=body, content_type="application/octet-stream")

    async def big(self, request: web.Request) -> web.StreamResponse:
        return web.Response(body=b"\0" * (LIMIT + 1), content_type="audio/wav")

    async def chunked(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()  # no Content-Length: only counting can stop it
        await response.prepare(request)
        for _ in range(LIMIT // 10_000 + 5):
            await response.write(b"\0" * 10_000)
        return response

    async def stall(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(self.wav[:100])
        await self.release.wait()  # holds the body open until the test ends
        return response


@pytest.fixture(scope="module")
async def remote(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Remote]:
    server = Remote(tmp_path_factory.mktemp("remote"))
    runner = web.AppRunner(server.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server.port = runner.addresses[0][1]
    yield server
    server.release.set()
    await runner.cleanup()


def limits(allowlist: str = "localhost", timeout_s: float = 10.0) -> FetchLimits:
    return FetchLimits(allowlist=allowlist, max_bytes=LIMIT, timeout_s=timeout_s, max_redirects=3)


async def test_a_media_url_is_downloaded_and_sniffed(remote: Remote, tmp_path: Path) -> None:
    url = f"http://localhost:{remote.port}/speech.wav"
    media = await fetch_media(url, tmp_path, limits())
    assert media.path.read_bytes() == remote.wav
    assert media.content_type == "audio/wav" and media.filename == "speech.wav"
    assert media.facts.duration == pytest.approx(1.0, abs=0.01) and media.final_url == url


async def test_redirects_are_followed_hop_by_hop(remote: Remote, tmp_path: Path) -> None:
    media = await fetch_media(f"http://localhost:{remote.port}/redirect", tmp_path, limits())
    assert media.final_url.endswith("/speech.wav") and media.path.read_bytes() == remote.wav


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("file:///etc/passwd", "only http and https"),
        ("ftp://example.org/a.mp3", "only http and https"),
        ("http://10.0.0.1/a.mp3", "private, loopback or link-local"),
        ("http://169.254.169.254/latest/meta-data", "private, loopback or link-local"),
        ("http://[::1]/a.mp3", "private, loopback or link-local"),
    ],
)
async def test_refused_targets_never_get_a_request(url: str, needle: str, tmp_path: Path) -> None:
    with pytest.raises(FetchError, match=needle) as refused:
        await fetch_media(url, tmp_path, limits())
    assert refused.value.status == 400 and url in refused.value.message


async def test_a_redirect_to_loopback_is_refused_when_loopback_is_not_allowed(
    remote: Remote, tmp_path: Path
) -> None:
    with pytest.raises(FetchError, match="private, loopback or link-local"):
        await fetch_media(f"http://localhost:{remote.port}/to-loopback", tmp_path, limits())
    media = await fetch_media(  # the same hop is fine once loopback is allowed
        f"http://localhost:{remote.port}/to-loopback", tmp_path, limits("localhost, 127.0.0.0/8")
    )
    assert media.path.read_bytes() == remote.wav


@pytest.mark.parametrize(
    ("path", "error", "needle"),
    [
        ("/to-file", FetchError, "redirected to file:///etc/passwd"),
        ("/loop", FetchError, "redirects more than 3 times"),
        ("/big", FetchTooLarge, f"larger than the limit of {LIMIT} bytes"),
        ("/chunked", FetchTooLarge, f"larger than the limit of {LIMIT} bytes"),
        ("/missing", FetchError, "answered HTTP 404"),
        ("/page", NotMedia, "not a readable audio or video file"),
        ("/empty", NotMedia, "empty body"),
        ("/video", NotMedia, "no audio track"),
    ],
)
async def test_bad_remote_answers_are_refused_with_a_reason(
    remote: Remote, tmp_path: Path, path: str, error: type[Exception], needle: str
) -> None:
    with pytest.raises(error, match=needle):
        await fetch_media(f"http://localhost:{remote.port}{path}", tmp_path, limits())


async def test_a_stalling_server_hits_the_time_limit(remote: Remote, tmp_path: Path) -> None:
    with pytest.raises(FetchError, match="took longer than 1 s"):
        await fetch_media(f"http://localhost:{remote.port}/stall", tmp_path, limits(timeout_s=1.0))


FORMATS = {  # container: (audio codec args, with a video track)
    "mp3": (["-c:a", "libmp3lame"], False),
    "ogg": (["-c:a", "libopus"], False),
    "m4a": (["-c:a", "aac"], False),
    "flac": (["-c:a", "flac"], False),
    "webm": (["-c:a", "libopus"], True),
    "mp4": (["-c:a", "aac"], True),
    "mkv": (["-c:a", "libvorbis"], True),
    "mov": (["-c:a", "aac"], True),
}


@pytest.mark.parametrize("container", sorted(FORMATS))
async def test_every_listed_format_is_sniffed_and_its_audio_extracted(
    remote: Remote, tmp_path: Path, container: str
) -> None:
    codec, video = FORMATS[container]
    source, media = tmp_path / "tone.wav", tmp_path / f"media.{container}"
    source.write_bytes(tone_wav())
    picture = ["-f", "lavfi", "-i", "color=c=green:s=64x64:d=1"] if video else []
    video_codec = (["-c:v", "libvpx"] if container == "webm" else ["-c:v", "mpeg4"]) if video else []
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", *picture, "-i", str(source), *video_codec, *codec,
         "-shortest", str(media)],
        check=True,
    )  # fmt: skip
    remote.extra[f"/media.{container}"] = media.read_bytes()
    fetched = await fetch_media(f"http://localhost:{remote.port}/media.{container}", tmp_path, limits())
    assert fetched.facts.duration == pytest.approx(1.0, abs=0.1)
    normalised = tmp_path / "normalised.wav"
    await normalise(fetched.path, normalised)  # what ingest does: the first audio track, 16 kHz PCM
    assert probe_rate(normalised) == 16000


def probe_rate(path: Path) -> int:
    with wave.open(str(path)) as w:
        return w.getframerate()
