"""Make test speech with espeak-ng and ffmpeg (both Debian packages; no network, no models).

espeak-ng writes 22,050 Hz mono; ffmpeg resamples it to the engine's 16 kHz PCM and, for
call-centre style tests, puts two recordings on the left and right channels of one file.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path


def espeak_wav(text: str, voice: str, path: Path, rate_hz: int = 16000) -> Path:
    """Speak text with an espeak-ng voice (e.g. ``en-us``, ``pt-br``) into a mono 16-bit WAV."""
    path = Path(path)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "espeak.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-w", str(raw), text], check=True)
        _ffmpeg("-i", str(raw), "-ac", "1", "-ar", str(rate_hz), "-c:a", "pcm_s16le", str(path))
    return path


def stereo_wav(left: Path, right: Path, path: Path) -> Path:
    """Join two mono WAVs into one stereo WAV (left = channel 0); the shorter one is padded."""
    path = Path(path)
    _ffmpeg(
        "-i", str(left), "-i", str(right),
        "-filter_complex", "[0:a][1:a]amerge=inputs=2,pan=stereo|c0=c0|c1=c1[out]",
        "-map", "[out]", "-c:a", "pcm_s16le", str(path),
    )  # fmt: skip
    return path


def silence_wav(seconds: float, path: Path, rate_hz: int = 16000) -> Path:
    """A mono WAV of digital silence."""
    path = Path(path)
    _ffmpeg(
        "-f", "lavfi", "-i", f"anullsrc=r={rate_hz}:cl=mono", "-t", str(seconds),
        "-c:a", "pcm_s16le", str(path),
    )  # fmt: skip
    return path


def _ffmpeg(*args: str) -> None:
    subprocess.run(
        ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args], check=True
    )
