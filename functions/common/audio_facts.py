"""Facts read from the normalised audio: bandwidth and whether a stereo file is really mono.

Call-centre recordings are often "stereo" with the same signal on both channels; transcribing
both would double the work and every segment. Only the first minutes are read: the facts
describe the recording, and reading an hour of samples would cost memory for nothing.
"""

from __future__ import annotations

import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

ANALYSED_SECONDS = 300
ENERGY_SHARE = 0.99
REDUNDANT_CORRELATION = 0.98


@dataclass(frozen=True)
class AudioFacts:
    bandwidth: float
    redundant_channel: bool


def read_pcm(path: Path, seconds: float = ANALYSED_SECONDS) -> tuple[npt.NDArray[np.float32], int]:
    """Samples as float32 of shape (frames, channels) from a 16-bit PCM WAV."""
    with wave.open(str(path)) as wav:
        rate, channels = wav.getframerate(), wav.getnchannels()
        frames = wav.readframes(min(wav.getnframes(), int(seconds * rate)))
    samples = np.frombuffer(frames, dtype=np.int16).reshape(-1, channels)
    return samples.astype(np.float32) / 32768.0, rate


def bandwidth_hz(signal: npt.NDArray[np.float32], rate: int) -> float:
    """The frequency below which ``ENERGY_SHARE`` of the energy lies (0 for silence)."""
    if signal.size < 2:
        return 0.0
    power = np.abs(np.fft.rfft(signal)) ** 2
    total = float(power.sum())
    if total <= 0:
        return 0.0
    cumulative = np.cumsum(power) / total
    index = int(np.searchsorted(cumulative, ENERGY_SHARE))
    return round(index * rate / (2 * (power.size - 1)), 1)


def channels_redundant(samples: npt.NDArray[np.float32]) -> bool:
    if samples.shape[1] < 2:
        return False
    left, right = samples[:, 0], samples[:, 1]
    if not left.any() and not right.any():
        return True
    if not left.any() or not right.any():
        return False
    correlation = float(np.corrcoef(left, right)[0, 1])
    return correlation >= REDUNDANT_CORRELATION


def audio_facts(path: Path) -> AudioFacts:
    samples, rate = read_pcm(path)
    return AudioFacts(
        bandwidth=bandwidth_hz(samples.mean(axis=1), rate),
        redundant_channel=channels_redundant(samples),
    )
