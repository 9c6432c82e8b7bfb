"""Generated test media for the Kashf feature extractors: nothing here needs a licence.

Used by the unit and integration tests. Images are drawn with PIL from a seeded
random generator, so a test sees the same pixels on every run; videos come from ffmpeg's built-in
`lavfi` sources.
"""

from __future__ import annotations

import io
import random
import subprocess
from pathlib import Path

from PIL import Image, ImageDraw

SCENE_KINDS = ("sky", "checkerboard")


def scene_image(kind: str, seed: int, size: tuple[int, int] = (320, 240)) -> bytes:
    """A JPEG of one of two clearly different kinds of scene, varied in colour, position and size.

    "sky": a blue-ish gradient sky with a sun disc and a green ground band of varying height.
    "checkerboard": a high-contrast board of varying cell size and colours, shifted and rotated.
    The kinds differ in structure (smooth regions vs. hard repetitive edges), not just in colour,
    so a CNN embedding should group them while a colour histogram alone could not.
    """
    rng = random.Random(f"{kind}:{seed}")
    if kind == "sky":
        image = _sky(rng, size)
    elif kind == "checkerboard":
        image = _checkerboard(rng, size)
    else:
        raise ValueError(f"unknown scene kind {kind!r}; expected one of {SCENE_KINDS}")
    return to_jpeg(image)


def to_jpeg(image: Image.Image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def _sky(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    width, height = size
    image = Image.new("RGB", size)
    draw = ImageDraw.Draw(image)
    top = (rng.randint(20, 90), rng.randint(60, 150), rng.randint(170, 255))
    bottom = (rng.randint(150, 220), rng.randint(190, 240), rng.randint(220, 255))
    for y in range(height):
        t = y / max(1, height - 1)
        draw.line(
            [(0, y), (width, y)], fill=tuple(round(a + (b - a) * t) for a, b in zip(top, bottom, strict=True))
        )
    radius = rng.randint(height // 12, height // 5)
    cx = rng.randint(radius, width - radius)
    cy = rng.randint(radius, height // 2)
    sun = (255, rng.randint(200, 255), rng.randint(60, 160))
    draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=sun)
    ground = rng.randint(height * 2 // 3, height * 7 // 8)
    draw.rectangle(
        [0, ground, width, height], fill=(rng.randint(30, 90), rng.randint(120, 190), rng.randint(30, 80))
    )
    return image


def _checkerboard(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    width, height = size
    cell = rng.randint(14, 40)
    dark = (rng.randint(0, 80), rng.randint(0, 80), rng.randint(0, 80))
    light = (rng.randint(180, 255), rng.randint(180, 255), rng.randint(180, 255))
    span = 2 * max(width, height)
    board = Image.new("RGB", (span, span), light)
    draw = ImageDraw.Draw(board)
    for row in range(span // cell + 1):
        for col in range(span // cell + 1):
            if (row + col) % 2:
                draw.rectangle(
                    [col * cell, row * cell, (col + 1) * cell - 1, (row + 1) * cell - 1], fill=dark
                )
    board = board.rotate(rng.uniform(-30, 30), resample=Image.Resampling.BICUBIC)
    left = rng.randint(0, span - width)
    top = rng.randint(0, span - height)
    return board.crop((left, top, left + width, top + height))


def blank_image(size: tuple[int, int] = (320, 240), colour: tuple[int, int, int] = (40, 130, 200)) -> bytes:
    """A plain JPEG with nothing in it: the "no face here" case."""
    return to_jpeg(Image.new("RGB", size, colour))


def static_then_moving_video(
    path: Path, static_seconds: float = 2.0, moving_seconds: float = 2.0, fps: int = 30, size: str = "160x120"
) -> Path:
    """An H.264 MP4: a still grey picture, then black-and-white stripes sliding fast sideways.

    The stripes (period 50 px) move by 1 radian of phase every 100 ms, so samples 100 ms apart differ
    by about 0.5 in the frame-difference measure (200 ms apart: 1.0), while the still part's frames
    are identical: a clear case for the frame-difference filter. The change is in brightness, not
    hue, because the measure compares greyscale thumbnails.
    """
    still = f"color=c=gray:size={size}:rate={fps}:duration={static_seconds}"
    moving = (
        f"color=c=gray:size={size}:rate={fps}:duration={moving_seconds},"
        "geq=lum='128+127*sin(X/8+T*10)':cb=128:cr=128"
    )
    command = [
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
        "-f", "lavfi", "-i", still, "-f", "lavfi", "-i", moving,
        "-filter_complex", "[0:v]format=yuv420p[a];[1:v]format=yuv420p[b];[a][b]concat=n=2:v=1:a=0[v]",
        "-map", "[v]", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path),
    ]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True)
    return path


def slideshow_video(
    path: Path, pictures: list[Path], seconds: float = 1.0, fps: int = 25, size: tuple[int, int] = (320, 400)
) -> Path:
    """An H.264 MP4 showing each picture for ``seconds``, one after the other: hard cuts at known
    times (``k * seconds``), and a still shot in between."""
    inputs: list[str] = []
    chains = []
    for n, picture in enumerate(pictures):
        inputs += ["-loop", "1", "-framerate", str(fps), "-t", f"{seconds}", "-i", str(picture)]
        chains.append(f"[{n}:v]scale={size[0]}:{size[1]},setsar=1,format=yuv420p[p{n}]")
    joined = "".join(f"[p{n}]" for n in range(len(pictures)))
    graph = ";".join([*chains, f"{joined}concat=n={len(pictures)}:v=1:a=0[v]"])
    command = [
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *inputs,
        "-filter_complex", graph, "-map", "[v]", "-r", str(fps),
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path),
    ]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True)
    return path
