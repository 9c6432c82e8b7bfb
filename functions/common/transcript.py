"""The transcript: what the engine produces and what every dialect renders.

Times are seconds (floats) from the start of the media; confidences are 0..1. Dialects convert
units at the edge (TRD scores 0..100, Harf ``H:MM:SS``).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Word(BaseModel):
    model_config = ConfigDict(frozen=True)

    text: str
    start: float
    end: float
    confidence: float


class Alternative(BaseModel):
    """A further reading of a segment's audio (n-best), after the segment's own text."""

    model_config = ConfigDict(frozen=True)

    text: str
    confidence: float


class Segment(BaseModel):
    model_config = ConfigDict(frozen=True)

    channel: int = 0
    speaker: str | None = None
    start: float
    end: float
    text: str
    confidence: float
    words: tuple[Word, ...] = ()
    alternatives: tuple[Alternative, ...] = ()  # beyond ``text``, best first; only when asked for
    task_results: dict[str, list[dict[str, Any]]] = Field(default_factory=dict)  # dataset → its tags
    # What the quality guard found and could not mend: "repetition", "low_confidence",
    # "broken_text"; "no_speech" marks speech the VAD heard that Whisper judged not speech
    # (then the text is empty).
    flags: tuple[str, ...] = ()


class Transcript(BaseModel):
    model_config = ConfigDict(frozen=True)

    job_id: str
    language: str
    duration: float
    channels: int
    segments: tuple[Segment, ...]

    @property
    def text(self) -> str:
        return " ".join(s.text.strip() for s in self.segments if s.text.strip())
