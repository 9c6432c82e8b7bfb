"""Video frames for the Kashf dialect: sample a video on a time grid and keep the frames that change.

ffmpeg does the decoding and sampling (its `select` filter) and encodes the sampled frames as an
MJPEG stream on stdout; this module splits that stream into JPEGs and drops frames too similar to
the last kept one. Frames are streamed, so only the kept JPEGs are held in memory, whatever the
video's length.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import IO

import numpy
from PIL import Image

from functions.train.features.image import FeatureError

_THUMB = 32  # side of the greyscale thumbnail the frame difference is measured on
_WINDOW = 8  # side of the windows SSIM is computed in (4 x 4 windows per thumbnail)
# SSIM's stabilising constants for values in 0..1 (Wang et al. 2004: K1 = 0.01, K2 = 0.03); they also
# make two flat frames of the same brightness identical (SSIM 1) instead of 0/0.
_C1, _C2 = 0.01**2, 0.03**2
_JPEG_QUALITY = 3  # ffmpeg's -q:v for MJPEG: 2 is best, 31 worst
_READ_CHUNK = 1 << 16
_SHOWINFO = re.compile(r"\bn:\s*\d+\s+pts:\s*-?\d+\s+pts_time:(-?[0-9.eE+-]+)")
_ERROR_TAIL = 5


@dataclass(frozen=True)
class Frame:
    index: int  # frame number in the source video (as in the Kashf doc's "frame": 585)
    seconds: float  # timestamp
    jpeg: bytes  # the frame, JPEG encoded


def sample_frames(
    path: Path, every_ms: int = 100, min_frame_diff: float = 0.4, duration: float | None = None
) -> list[Frame]:
    """Frames sampled every `every_ms`, keeping only those that differ enough from the last kept one.

    Sampling: for each multiple of `every_ms` from the start, the first source frame at or after it
    (so a frame's `seconds` is its real timestamp, within one source frame of the grid, and a
    video slower than the grid gives each source frame once instead of duplicates). Only the first
    `duration` seconds are read when it is given.

    Difference: ``frame_difference``, 0 for the same picture and about 1 across a hard cut. A frame
    is kept when its difference to the LAST KEPT frame (not the previous sample) is >=
    `min_frame_diff`; comparing to the last kept frame means a slow pan still yields a new frame
    once it has drifted far enough. The first frame is always kept and `min_frame_diff=0` keeps
    every sample.

    `index` is the source frame number, `round(seconds * frame rate)` with the stream's average
    frame rate: exact for constant-frame-rate video, the nearest equivalent for variable rate.
    """
    _check_parameters(every_ms, min_frame_diff, duration)
    frame_rate = _probe_frame_rate(path)
    command = _ffmpeg_command(path, every_ms, duration)
    process = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert process.stdout is not None and process.stderr is not None
    log = _StderrReader(process.stderr)
    try:
        kept = _changed_samples(_split_jpegs(process.stdout), min_frame_diff)
    finally:
        process.stdout.close()
        returncode = process.wait()
        log.join()
    if returncode != 0:
        raise FeatureError(f"ffmpeg could not read {path}: {log.reason()}")
    # A stream whose first frame sits slightly before zero (edit lists, B-frame delay) would give
    # a negative time, which no clock shows; such a frame is shown at 0.
    times = [max(0.0, t) for t in log.times]
    if kept and len(times) <= kept[-1][0]:
        raise FeatureError(
            f"ffmpeg reported {len(times)} timestamps for {kept[-1][0] + 1} sampled frames of {path}"
        )
    return [
        Frame(index=round(times[position] * frame_rate), seconds=times[position], jpeg=jpeg)
        for position, jpeg in kept
    ]


def _changed_samples(jpegs: Iterator[bytes], min_frame_diff: float) -> list[tuple[int, bytes]]:
    """(position in the sample sequence, jpeg) of the first sample and of each that differs enough
    from the last one kept."""
    kept: list[tuple[int, bytes]] = []
    last_thumb: numpy.ndarray | None = None
    for position, jpeg in enumerate(jpegs):
        thumb = _thumbnail(jpeg)
        if last_thumb is None or _difference(thumb, last_thumb) >= min_frame_diff:
            kept.append((position, jpeg))
            last_thumb = thumb
    return kept


def _check_parameters(every_ms: int, min_frame_diff: float, duration: float | None) -> None:
    if every_ms <= 0:
        raise ValueError(f"every_ms must be > 0, got {every_ms}")
    if not 0.0 <= min_frame_diff <= 1.0:
        raise ValueError(f"min_frame_diff must be within 0..1, got {min_frame_diff}")
    if duration is not None and not duration > 0:
        raise ValueError(f"duration must be > 0 or None, got {duration}")


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise FeatureError(f"{name} is not installed (Debian package ffmpeg)")
    return found


def _probe_frame_rate(path: Path) -> float:
    """The video stream's frame rate; also the early, clear failure for files that are not video."""
    command = [
        _tool("ffprobe"), "-v", "error", "-select_streams", "v:0",
        "-show_entries", "stream=avg_frame_rate,r_frame_rate", "-of", "json", *_input(path),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        # ffprobe's message already names the file ("x.txt: Invalid data found when processing input").
        raise FeatureError(f"not a readable video: {result.stderr.strip() or f'{path}: ffprobe failed'}")
    streams = json.loads(result.stdout or "{}").get("streams", [])
    if not streams:
        raise FeatureError(f"not a video: {path} has no video stream")
    for key in ("avg_frame_rate", "r_frame_rate"):
        rate = _fraction(streams[0].get(key, ""))
        if rate > 0:
            return rate
    raise FeatureError(f"not a video: {path} has no frame rate")


def _input(path: Path) -> list[str]:
    """Input options for a local file only: the "file:" prefix stops a name like "concat:..." or
    "http:..." from being read as a protocol, and the whitelist stops a playlist inside an uploaded
    file from making ffmpeg open network URLs."""
    return ["-protocol_whitelist", "file", "-i", f"file:{path.resolve()}"]


def _fraction(text: str) -> float:
    try:
        return float(Fraction(text))
    except (ValueError, ZeroDivisionError):
        return 0.0


def _ffmpeg_command(path: Path, every_ms: int, duration: float | None) -> list[str]:
    step = every_ms / 1000
    # The epsilon keeps a frame that sits exactly on the grid (e.g. frame 3 of 30 fps at 0.1 s)
    # in its own slot despite floating-point division.
    slot = f"floor(t/{step}+1e-6)"
    select = f"select='isnan(prev_selected_t)+gte({slot},floor(prev_selected_t/{step}+1e-6)+1)'"
    command = [_tool("ffmpeg"), "-hide_banner", "-nostdin", "-loglevel", "info"]
    if duration is not None:
        command += ["-t", f"{duration:.6f}"]
    command += [
        *_input(path), "-map", "0:v:0", "-an", "-sn", "-dn",
        "-vf", f"{select},showinfo", "-fps_mode", "passthrough",
        "-c:v", "mjpeg", "-q:v", str(_JPEG_QUALITY), "-f", "image2pipe", "pipe:1",
    ]  # fmt: skip
    return command


class _StderrReader:
    """Drains ffmpeg's stderr on a thread (a full pipe would block ffmpeg) and keeps the sampled
    frames' timestamps from `showinfo` plus the last other lines, which carry the error reason."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.times: list[float] = []
        self._other: list[str] = []
        self._stream = stream
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        for raw in self._stream:
            line = raw.decode("utf-8", "replace").strip()
            match = _SHOWINFO.search(line)
            if match:
                self.times.append(float(match.group(1)))
            elif line and "showinfo" not in line.lower():
                self._other = [*self._other[-(_ERROR_TAIL - 1) :], line]

    def join(self) -> None:
        self._thread.join()
        self._stream.close()

    def reason(self) -> str:
        return " | ".join(self._other) or "no reason given"


def _split_jpegs(stream: IO[bytes]) -> Iterator[bytes]:
    """Cut ffmpeg's MJPEG stream into single JPEGs.

    Header segments carry their length, so they are skipped by it (their payload may contain any
    byte pair); after start-of-scan, 0xFF is always followed by 0x00 or a restart marker, so the
    first FF D9 is the end of the image.
    """
    buffer = bytearray()
    eof = False
    while True:
        end = _jpeg_end(buffer)
        if end is not None:
            yield bytes(buffer[:end])
            del buffer[:end]
            continue
        if eof:
            if buffer:
                raise FeatureError("ffmpeg's frame stream ended inside a JPEG")
            return
        chunk = stream.read(_READ_CHUNK)
        if chunk:
            buffer += chunk
        else:
            eof = True


def _jpeg_end(data: bytearray) -> int | None:
    """Length of the complete JPEG at the start of `data`, or None when more bytes are needed."""
    if len(data) < 2:
        return None
    if data[0] != 0xFF or data[1] != 0xD8:
        raise FeatureError("ffmpeg's frame stream is not MJPEG")
    pos = 2
    while True:
        if pos + 4 > len(data):
            return None
        if data[pos] != 0xFF:
            raise FeatureError("corrupt JPEG header in ffmpeg's frame stream")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        length = (data[pos + 2] << 8) | data[pos + 3]
        pos += 2 + length
        if marker == 0xDA:  # start of scan: entropy-coded data follows
            break
    found = data.find(b"\xff\xd9", pos)
    return None if found < 0 else found + 2


def frame_difference(first: bytes, second: bytes) -> float:
    """How different two JPEG frames look, 0..1: one minus their structural similarity (SSIM).

    Both are reduced to 32x32 greyscale thumbnails; SSIM (Wang et al. 2004) compares brightness,
    contrast and structure in each 8x8 window, and the difference is 1 - their mean, clipped to 0..1.
    Measured on the portraits in tests/data/kashf: a hard cut between two of them scores 0.98-1.0,
    the same frame re-encoded 0.0, a 2.5 % sideways shift about 0.12 and 20 % brighter about 0.03.
    The mean absolute pixel difference used before scored hard cuts 0.25-0.3 (below the
    document's default threshold of 0.4) because unrelated pictures share much of their brightness.
    """
    return _difference(_thumbnail(first), _thumbnail(second))


def _thumbnail(jpeg: bytes) -> numpy.ndarray:
    with Image.open(io.BytesIO(jpeg)) as image:
        # draft() lets the JPEG decoder scale down while decoding: much cheaper than a full decode.
        image.draft("L", (_THUMB * 2, _THUMB * 2))
        grey = image.convert("L").resize((_THUMB, _THUMB), Image.Resampling.BOX)
    return numpy.asarray(grey, dtype=numpy.float32) / 255.0


def _windows(thumb: numpy.ndarray) -> numpy.ndarray:
    """The thumbnail's 8x8 windows, one per row (64 values each)."""
    n = _THUMB // _WINDOW
    return thumb.reshape(n, _WINDOW, n, _WINDOW).transpose(0, 2, 1, 3).reshape(n * n, _WINDOW * _WINDOW)


def _difference(a: numpy.ndarray, b: numpy.ndarray) -> float:
    x, y = _windows(a).astype(numpy.float64), _windows(b).astype(numpy.float64)
    mean_x, mean_y = x.mean(axis=1), y.mean(axis=1)
    var_x, var_y = x.var(axis=1), y.var(axis=1)
    covariance = ((x - mean_x[:, None]) * (y - mean_y[:, None])).mean(axis=1)
    ssim = ((2 * mean_x * mean_y + _C1) * (2 * covariance + _C2)) / (
        (mean_x**2 + mean_y**2 + _C1) * (var_x + var_y + _C2)
    )
    return float(numpy.clip(1.0 - ssim.mean(), 0.0, 1.0))
