"""What the transcribe function needs from an ASR engine (``functions.transcribe.engine.WhisperEngine``)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from functions.common.transcript import Segment

MAX_CHUNK_S = 30.0  # Whisper's window: no chunk decodes longer than this


@dataclass(frozen=True)
class TranscribeOptions:
    language: str | None = None  # ISO 639-1; None = detect
    word_timestamps: bool = True
    speaker_labels: bool = False
    # TRD's config.diarization.clustering.threshold (higher = fewer speakers); None = the
    # diarization_threshold setting. Only read when speaker_labels is on.
    diarization_threshold: float | None = None
    hints: tuple[str, ...] = ()  # words to bias the decoder towards (TRD hints_words)
    # TRD's diarization.vad: a pause (s) at least this long between speech regions ends a segment
    # (None = only Whisper's own segment ends); speech is decoded in chunks of at most max_chunk_s.
    max_silence_s: float | None = None
    max_chunk_s: float = MAX_CHUNK_S
    # TRD's decoder.max_sentences: up to this many alternatives per segment (1 = no extra work).
    alternatives: int = 1
    # How much audio the encoder reads at once: Whisper's 30 s, or less for a live utterance
    # (cheaper: the encoder's cost follows its input); windows never hold more than this.
    window_s: float = MAX_CHUNK_S
    # Whisper's task: "transcribe" (the speech's own language) or "translate" (into English).
    task: str = "transcribe"
    # 0: the quality guard's ladder (greedy or beam first, sampling only where a reading fails);
    # above 0, sampling at this temperature from the first reading (OpenAI's ``temperature``).
    temperature: float = 0.0


class ChannelRun(Protocol):
    """One channel being transcribed: a language is known before segments are pulled; once they
    are, it is the language they were read in (a detected language can give way to another)."""

    @property
    def language(self) -> str: ...

    def segments(self) -> Iterator[Segment]:
        """Segments in time order, produced lazily so the caller can report progress."""
        ...


class AsrEngine(Protocol):
    def transcribe_channel(self, wav_path: Path, channel: int, options: TranscribeOptions) -> ChannelRun:
        """Transcribe one channel of a 16 kHz PCM WAV file (channel index from 0)."""
        ...

    def transcribe_audio(
        self, audio: npt.NDArray[np.float32], channel: int, options: TranscribeOptions
    ) -> ChannelRun:
        """Transcribe 16 kHz mono float32 samples (``channel`` only labels the segments)."""
        ...
