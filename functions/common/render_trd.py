"""CPqD TRD shapes of a job and its transcript: the v3 JOB, segments and the CSV.

Used by the TRD dialect and by notify (callback_urls receive the finished JOB). Units convert
here: channels count from 1, scores are 0..100, CSV times are ``mm:ss:sss``, and a word's
``start_time``/``end_time`` count from its segment's ``start``, as in the document's example
(segment 0.861-4.12 s, its first word at 0.000035 s), where transcripts keep media time.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

from functions.common.batch_status import (  # noqa: F401  (file_progress, render_batch_status: for callers)
    accounted_so_far,
    control_of,
    file_progress,
    render_batch_status,
    transcribed_channels,
)
from functions.common.jobs import JobDocument, JobStatus
from functions.common.reasons import public_reason
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
        "failure_reason": public_reason(job.failure_reason),
        "media": render_media(job),
        "config": job.config,
    }
    return {key: value for key, value in body.items() if value is not None}


def render_words(segment: Segment) -> list[dict[str, Any]]:
    """Words timed from the segment's start as rendered, so ``start + start_time`` is the word's
    time in the media (never before the segment: a word the engine began a hair early starts at 0)."""
    start = round(segment.start, 3)

    def since_start(seconds: float) -> float:
        return round(max(0.0, seconds - start), 3)

    return [
        {"text": w.text, "score": round(w.confidence * 100), "start_time": since_start(w.start),
         "end_time": since_start(w.end)}
        for w in segment.words
    ]  # fmt: skip


def render_segment(segment: Segment, lm: str, word_details: bool) -> dict[str, Any]:
    words = render_words(segment)
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
            },
            # decoder.max_sentences > 1: further readings, best first, without word timings
            *(
                {"text": a.text.strip(), "words": [], "score": round(a.confidence * 100), "lm": lm}
                for a in segment.alternatives
            ),
        ],
        "task_results": dict(segment.task_results),
        **_quality(segment),
    }


def _quality(segment: Segment) -> dict[str, list[str]]:
    """Shenava's addition, only when there is something to say: what the quality guard flagged
    (``repetition``, ``low_confidence``, ``broken_text``; ``no_speech`` on a NO_MATCH segment)."""
    return {"quality_flags": list(segment.flags)} if segment.flags else {}


def render_segments(job: JobDocument, transcript: Transcript) -> list[dict[str, Any]]:
    recognition = job.config.get("recognition", {})
    lm = str(recognition.get("lm", ""))
    word_details = bool(recognition.get("decoder", {}).get("word_details", 1))
    return [render_segment(s, lm, word_details) for s in transcript.segments]


def csv_time(seconds: float) -> str:
    millis = round(seconds * 1000)
    return f"{millis // 60000:02d}:{millis // 1000 % 60:02d}:{millis % 1000:03d}"


def render_csv(job: JobDocument, transcript: Transcript | None) -> str:
    """The CSV; without a transcript (yet), its header alone."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    kbps = round(job.media.bit_rate / 1000)
    for number, segment in enumerate(transcript.segments if transcript else (), start=1):
        writer.writerow([
            number, segment.channel + 1, csv_time(segment.start), csv_time(segment.end),
            segment.speaker or str(segment.channel + 1), segment.text.strip(),
            round(segment.confidence * 100), "", "", kbps, "",
        ])  # fmt: skip
    return out.getvalue()


# --- The batch (drop-folder) API's shapes -------------------------------------------------


def http_date(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")


def clock_duration(seconds: float) -> str:
    millis = round(seconds * 1000)
    return (
        f"{millis // 3_600_000:02d}:{millis // 60_000 % 60:02d}:{millis // 1000 % 60:02d}.{millis % 1000:03d}"
    )


def _info(job: JobDocument) -> dict[str, Any]:
    media = job.media
    return {
        "BitRate": str(media.bit_rate), "BitRateMode": "", "Channels": str(media.channels),
        "Codec": _codec(media.codec), "Comment": "", "Compression_Mode": "",
        "Duration": clock_duration(media.duration), "EncodedLibrary": "", "FileCreatedDate": "",
        "FileModifiedDate": "", "FileSize": str(media.size),
        "Format": FORMAT_NAMES.get(media.format, media.format),
        "InputSamplingRate": str(media.sample_rate), "OutputSamplingRate": "16000",
        "RedundantChannel": media.redundant_channel, "Track": "",
    }  # fmt: skip


def render_record(job: JobDocument) -> dict[str, Any]:
    """A registered audio file of the batch API, with its ``id`` (the document's record has none
    in its examples, but a reset "returns the new file's information, with its new id")."""
    normalised = bool(job.media.normalized_key)
    channels = 1 if job.media.redundant_channel else job.media.channels
    record: dict[str, Any] = {
        "id": job.id,
        "batch": job.batch or None,
        "control": control_of(job),
        "create_date": http_date(job.created_at),
        "filename": job.filename,
        "format": job.filename.rsplit(".", 1)[-1].lower() if "." in job.filename else job.media.format,
        "last_update": http_date(job.updated_at),
        "md5": job.media.md5,
        "size": job.media.size,
        "status": job.stage.value,
    }
    if normalised:
        record["audioChannels"] = [
            {
                "bandwidth": str(round(job.media.bandwidth)),
                "channel": n + 1,
                "duration": round(job.media.duration, 3),
            }
            for n in range(channels)
        ]
        record["info"] = _info(job)
    if job.failure_reason:
        record["failure_reason"] = public_reason(job.failure_reason)
    return record


def render_batch_result(job: JobDocument, transcript: Transcript | None) -> dict[str, Any]:
    segments = [
        {
            "channel": s.channel + 1, "end": round(s.end, 3), "score": round(s.confidence * 100),
            "speaker": s.speaker or str(s.channel + 1), "start": round(s.start, 3),
            "status": "RECOGNIZED" if s.text.strip() else "NO_MATCH", "text": s.text.strip(),
            "words": render_words(s),
            **_quality(s),
        }
        for s in (transcript.segments if transcript else ())
    ]  # fmt: skip
    return {**render_record(job), "segments": segments}


def render_file_status(job: JobDocument) -> dict[str, Any]:
    """``accounted_speech``; while the file is recognised, the segments done so far and, as
    PROCESSING, the audio still to decode (its segments are not known before they are done)."""
    so_far = accounted_so_far(job)
    accounted = {name: {"seconds": a.seconds, "segments": a.segments} for name, a in so_far.items()}
    if job.status == JobStatus.IN_PROGRESS:
        total = job.media.duration * transcribed_channels(job)
        left = total - job.progress.audio_s if job.progress is not None else total
        accounted["PROCESSING"] = {"seconds": round(max(left, 0.0), 3), "segments": 0}
    return {
        "accounted_speech": accounted,
        "total_segments": sum(a.segments for a in so_far.values()),
        "total_speech": round(sum(a.seconds for a in so_far.values()), 3),
    }
