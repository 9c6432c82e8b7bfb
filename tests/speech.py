"""Make test speech with espeak-ng and ffmpeg (both Debian packages; no network, no models).

espeak-ng writes 22,050 Hz mono; ffmpeg resamples it to the engine's 16 kHz PCM. For
call-centre style tests, two recordings go on the left and right channels of one file.
"""

from __future__ import annotations

import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt


def espeak_wav(text: str, voice: str, path: Path, rate_hz: int = 16000, *, delay_s: float = 0.0) -> Path:
    """Speak text with an espeak-ng voice (e.g. ``en-us``, ``pt-br``) into a mono 16-bit WAV.

    ``delay_s`` puts that much silence before the speech (to check absolute times).
    """
    path = Path(path)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "espeak.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-w", str(raw), text], check=True)
        delay = ["-af", f"adelay={round(delay_s * 1000)}:all=1"] if delay_s > 0 else []
        _ffmpeg(
            "-i", str(raw), *delay, "-ac", "1", "-ar", str(rate_hz), "-c:a", "pcm_s16le", str(path)
        )  # fmt: skip
    return path


def stereo_wav(left: Path, right: Path, path: Path) -> Path:
    """Join two mono 16-bit WAVs of one rate into a stereo WAV (left = channel 0).

    The shorter side is padded with silence (ffmpeg's amerge would cut the longer one).
    """
    (rate, a), (rate_b, b) = _read_mono(left), _read_mono(right)
    if rate != rate_b:
        raise ValueError(f"{left} is {rate} Hz but {right} is {rate_b} Hz")
    length = max(a.size, b.size)
    frames = np.zeros((length, 2), dtype=np.int16)
    frames[: a.size, 0] = a
    frames[: b.size, 1] = b
    path = Path(path)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(frames.tobytes())
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
    subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def _read_mono(path: Path) -> tuple[int, npt.NDArray[np.int16]]:
    with wave.open(str(path), "rb") as wav:
        if wav.getnchannels() != 1 or wav.getsampwidth() != 2:
            raise ValueError(f"{path}: expected mono 16-bit PCM")
        return wav.getframerate(), np.frombuffer(wav.readframes(wav.getnframes()), np.int16)
