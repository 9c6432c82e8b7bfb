"""Media facts with ffprobe, and normalisation to 16 kHz PCM with ffmpeg.

Both run as subprocesses with time limits; a file they cannot read raises ``PoisonError``
with a reason a user can act on: what the tool said about the media, never our temporary path.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from events.errors import PoisonError
from functions.common.jobs import MediaFacts
from functions.common.reasons import tool_message

PROBE_TIMEOUT_S = 60.0
NORMALISE_TIMEOUT_S = 3600.0
TARGET_RATE = 16_000


@dataclass(frozen=True)
class Probe:
    format: str
    codec: str
    duration: float
    channels: int
    sample_rate: int
    bit_rate: int
    size: int
    md5: str


def media_facts(facts: Probe, **fields: Any) -> MediaFacts:
    """The job's media facts from a probe, plus the fields only the caller knows (keys, type)."""
    return MediaFacts(
        md5=facts.md5, size=facts.size, format=facts.format, codec=facts.codec, duration=facts.duration,
        channels=facts.channels, sample_rate=facts.sample_rate, bit_rate=facts.bit_rate, **fields,
    )  # fmt: skip


async def _run(args: list[str], timeout: float) -> tuple[int, bytes, bytes]:
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    return proc.returncode or 0, out, err


def file_md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as f:
        while chunk := f.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


async def probe(path: Path) -> Probe:
    args = ["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams"]
    try:
        code, out, err = await _run([*args, str(path)], PROBE_TIMEOUT_S)
    except TimeoutError as exc:
        raise PoisonError("the media could not be read: probing it took too long") from exc
    if code != 0:
        detail = tool_message(err, path)
        hint = f" ({detail})" if detail else ""
        raise PoisonError(f"the file is not a readable audio or video file{hint}")
    info = json.loads(out or b"{}")
    audio = [s for s in info.get("streams", []) if s.get("codec_type") == "audio"]
    if not audio:
        raise PoisonError("the file has no audio track")
    stream, fmt = audio[0], info.get("format", {})
    duration = float(stream.get("duration") or fmt.get("duration") or 0.0)
    if duration <= 0:
        raise PoisonError("the audio track is empty (duration 0)")
    return Probe(
        format=str(fmt.get("format_name", "")),
        codec=str(stream.get("codec_name", "")),
        duration=duration,
        channels=int(stream.get("channels") or 0),
        sample_rate=int(stream.get("sample_rate") or 0),
        bit_rate=int(stream.get("bit_rate") or fmt.get("bit_rate") or 0),
        size=path.stat().st_size,
        md5=file_md5(path),
    )


async def has_video_stream(path: Path) -> bool:
    """Whether ffprobe finds a moving-picture stream: a still image (ffprobe's ``image2`` or
    ``*_pipe`` formats) and cover art in an audio file do not count."""
    args = ["ffprobe", "-v", "error", "-print_format", "json", "-show_streams", "-show_format", str(path)]
    try:
        code, out, _ = await _run(args, PROBE_TIMEOUT_S)
    except TimeoutError:
        return False
    if code != 0:
        return False
    info = json.loads(out or b"{}")
    format_name = str(info.get("format", {}).get("format_name", ""))
    if format_name == "image2" or format_name.endswith("_pipe"):
        return False
    streams = info.get("streams", [])
    return any(
        s.get("codec_type") == "video" and not s.get("disposition", {}).get("attached_pic") for s in streams
    )


async def normalise(source: Path, target: Path) -> None:
    """First audio track → 16 kHz 16-bit PCM WAV, every channel kept."""
    args = [
        "ffmpeg",
        "-nostdin",
        "-v",
        "error",
        "-y",
        "-i",
        str(source),
        "-map",
        "0:a:0",
        "-vn",
        "-acodec",
        "pcm_s16le",
        "-ar",
        str(TARGET_RATE),
        str(target),
    ]
    try:
        code, _, err = await _run(args, NORMALISE_TIMEOUT_S)
    except TimeoutError as exc:
        raise PoisonError("the audio could not be decoded in time") from exc
    if code != 0:
        detail = tool_message(err, source, target)
        hint = f" ({detail})" if detail else ""
        raise PoisonError(f"the audio could not be decoded{hint}")
