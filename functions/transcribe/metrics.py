"""What the transcribe worker counts (Prometheus, the process's default registry)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from functions.common.transcript import Transcript

SEGMENTS = Counter(
    "shenava_transcript_segments_total",
    "Transcript segments written, by quality flag ('none' for a segment the guard found nothing wrong with)",
    ["flag"],
)
AUDIO_SECONDS = Counter("shenava_transcribed_audio_seconds_total", "Seconds of media transcribed")
REALTIME_FACTOR = Histogram(
    "shenava_engine_realtime_factor",
    "Engine time over media duration, per job (lower is faster)",
    buckets=(0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0),
)


def count(transcript: Transcript, engine_s: float) -> None:
    for segment in transcript.segments:
        for flag in segment.flags or ("none",):
            SEGMENTS.labels(flag=flag).inc()
    AUDIO_SECONDS.inc(transcript.duration)
    if transcript.duration > 0:
        REALTIME_FACTOR.observe(engine_s / transcript.duration)
