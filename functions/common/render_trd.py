"""CPqD TRD shapes of a job and its transcript: the v3 JOB, segments and the CSV.

Used by the TRD dialect and by notify (callback_urls receive the finished JOB). Units convert
here: channels count from 1, scores are 0..100, CSV times are ``mm:ss:sss``.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

from functions.common.jobs import JobDocument, JobStatus
from functions.common.transcript import Segment, Transcript

CSV_COLUMNS = (
    "contador", "canal", "início", "fim", "speaker", "texto", "score",
    "reservado 1", "reservado 2", "bitrate", "reservado 3",
)  # fmt: skip
FORMAT_NAMES = {
    "wav": "Wave",
    "mp3": "MPEG Audio",
    "flac": "FLAC",
    "ogg": "Ogg",
    "mov,mp4,m4a,3gp,3g2,mj2": "MPEG-4",
}


def trd_time(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat(timespec="microseconds") if moment else None


def _codec(codec: str) -> str:
    return "PCM" if codec.startswith("pcm_") else codec.upper()


def render_media(job: JobDocument) -> dict[str, Any]:
    media = job.media
    finished = job.status == JobStatus.COMPLETED
    channels = [
        {
            "channel": index + 1,
            "duration": round(media.duration, 3),
            "speech": media.speech[index] if index < len(media.speech) else 0.0,
            "silence": finished and index < len(media.speech) and media.speech[index] == 0.0,
        }
        for index in range(media.channels)
    ]
    return {
        "md5": media.md5,
        "size": media.size,
        "input": {
            "sample_rate": media.sample_rate,
            "channels": media.channels,
            "bit_rate": media.bit_rate,
            "format": FORMAT_NAMES.get(media.format, media.format),
            "codec": _codec(media.codec),
            "bandwidth": media.bandwidth,
        },
        "output": {"redundant_channel": media.redundant_channel, "channels": channels},
    }


def render_job(job: JobDocument) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": job.id,
        "filename": job.filename,
        "status": job.status.value,
        "created_at": trd_time(job.created_at),
        "started_at": trd_time(job.started_at),
        "diarized_at": trd_time(job.diarized_at),
        "completed_at": trd_time(job.completed_at),
        "tag": job.tag,
        "callback_urls": job.callback_urls,
        "callback_failure_reason": job.callback_failure_reason,
        "failure_reason": job.failure_reason,
        "media": render_media(job),
        "config": job.config,
    }
    return {key: value for key, value in body.items() if value is not None}


def render_segment(segment: Segment, lm: str, word_details: bool) -> dict[str, Any]:
    words = [
        {"text": w.text, "score": round(w.confidence * 100), "start_time": w.start, "end_time": w.end}
        for w in segment.words
    ]
    text = segment.text.strip()
    return {
        "channel": segment.channel + 1,
        "speaker": segment.speaker or str(segment.channel + 1),
        "start": round(segment.start, 3),
        "end": round(segment.end, 3),
        "status": "RECOGNIZED" if text else "NO_MATCH",
        "alternatives": [
            {
                "text": text,
                "words": words if word_details else [],
                "score": round(segment.confidence * 100),
                "lm": lm,
            }
        ],
        "task_results": {},
    }


def render_segments(job: JobDocument, transcript: Transcript) -> list[dict[str, Any]]:
    recognition = job.config.get("recognition", {})
    lm = str(recognition.get("lm", ""))
    word_details = bool(recognition.get("decoder", {}).get("word_details", 1))
    return [render_segment(s, lm, word_details) for s in transcript.segments]


def csv_time(seconds: float) -> str:
    millis = round(seconds * 1000)
    return f"{millis // 60000:02d}:{millis // 1000 % 60:02d}:{millis % 1000:03d}"


def render_csv(job: JobDocument, transcript: Transcript) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    kbps = round(job.media.bit_rate / 1000)
    for number, segment in enumerate(transcript.segments, start=1):
        writer.writerow([
            number, segment.channel + 1, csv_time(segment.start), csv_time(segment.end),
            segment.speaker or str(segment.channel + 1), segment.text.strip(),
            round(segment.confidence * 100), "", "", kbps, "",
        ])  # fmt: skip
    return out.getvalue()
