"""The Harf rendering of a transcript: ``H:MM:SS`` times and Persian display text.

Harf's samples give times as ``str(datetime.timedelta)`` does for whole seconds (``0:00:02``,
hours unpadded). Times are rounded to the nearest second, half up: rounding is monotonic, so
segments keep their order and an end is never before its start.
"""

from __future__ import annotations

import math
from typing import Any

from functions.common.persian import persian_display
from functions.common.transcript import Segment, Transcript

PERSIAN = "fa"


def hms(seconds: float) -> str:
    """Seconds → ``H:MM:SS`` (``0:00:44``; ``25:00:00`` past a day, never ``1 day, …``)."""
    total = max(0, math.floor(seconds + 0.5)) if math.isfinite(seconds) else 0
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def display_text(text: str, language: str) -> str:
    text = " ".join(text.split())
    return persian_display(text) if language == PERSIAN else text


def render_segment(segment: Segment, language: str, offset_s: float = 0.0) -> dict[str, Any]:
    rendered: dict[str, Any] = {
        "start": hms(segment.start + offset_s),
        "end": hms(segment.end + offset_s),
        "text": display_text(segment.text, language),
    }
    if segment.flags:
        rendered["quality_flags"] = list(segment.flags)  # Shenava's addition: what the guard flagged
    return rendered


def render_task(media_url: str, duration_s: float, transcript: Transcript | None) -> dict[str, Any]:
    """One entry of the synchronous answer: ``{"media_url", "duration", "segments"}``."""
    segments = []
    if transcript is not None:
        segments = [render_segment(s, transcript.language) for s in transcript.segments if s.text.strip()]
    return {"media_url": media_url, "duration": hms(duration_s), "segments": segments}
