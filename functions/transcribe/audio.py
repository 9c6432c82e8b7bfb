"""Audio as the engine reads it: one channel of the normalised 16 kHz PCM WAV, float32 in [-1, 1]."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 16_000

Audio = npt.NDArray[np.float32]


def load_wav_channel(path: Path, channel: int) -> Audio:
    """One channel of a 16 kHz PCM WAV (16- or 32-bit) as float32 samples in [-1, 1]."""
    with wave.open(str(path), "rb") as wav:
        rate, channels, width = wav.getframerate(), wav.getnchannels(), wav.getsampwidth()
        frames = wav.readframes(wav.getnframes())
    if rate != SAMPLE_RATE:
        raise ValueError(f"{path}: {rate} Hz; the engine needs {SAMPLE_RATE} Hz")
    if not 0 <= channel < channels:
        raise ValueError(f"{path}: no channel {channel} (it has {channels})")
    if width not in (2, 4):
        raise ValueError(f"{path}: {8 * width}-bit samples; the engine reads 16- or 32-bit PCM")
    dtype = np.int16 if width == 2 else np.int32
    samples = np.frombuffer(frames, dtype=dtype).reshape(-1, channels)[:, channel]
    return (samples.astype(np.float32) / float(np.iinfo(dtype).max + 1)).astype(np.float32)


def span(audio: Audio, start_s: float, end_s: float) -> Audio:
    """The samples between two times (s), clamped to the audio."""
    first = min(audio.size, max(0, round(start_s * SAMPLE_RATE)))
    last = min(audio.size, max(first, round(end_s * SAMPLE_RATE)))
    return audio[first:last]
