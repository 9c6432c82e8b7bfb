"""16-bit PCM bytes and float32 samples in [-1, 1], one scale both ways.

Samples read from PCM as ``k / 32768`` go back to exactly ``k``: an utterance passed from the API
to a live worker, or written to a WAV for the pipeline, is the audio the client sent.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FULL_SCALE = 32768.0


def float_samples(pcm: bytes) -> npt.NDArray[np.float32]:
    """Little-endian 16-bit PCM as float32 samples (a trailing odd byte is ignored)."""
    return np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2").astype(np.float32) / FULL_SCALE


def pcm16_bytes(samples: npt.NDArray[np.float32]) -> bytes:
    """Float samples as little-endian 16-bit PCM, clipped to its range."""
    return np.clip(samples * FULL_SCALE, -FULL_SCALE, FULL_SCALE - 1).astype("<i2").tobytes()
