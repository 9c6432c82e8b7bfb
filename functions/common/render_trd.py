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

from functions.common.jobs import Accounted, Control, JobDocument, JobStatus
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

STAGE_ORDER = ("INITIAL", "NORMALIZING", "NORMALIZED", "DIARIZING", "DIARIZED", "RECOGNIZING", "RECOGNIZED")


def control_of(job: JobDocument) -> str:
    if job.status == JobStatus.COMPLETED:
        return "FINISHED"
    if job.status in {JobStatus.FAILED, JobStatus.STOPPED, JobStatus.DELETED}:
        return "FAILED"
    return job.control.value


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


def _accounted_so_far(job: JobDocument) -> dict[str, Accounted]:
    """A finished job's accounting; a running one's segments done so far (its progress)."""
    if job.status == JobStatus.IN_PROGRESS and job.progress is not None:
        return job.progress.accounted
    return job.accounted


def render_file_status(job: JobDocument) -> dict[str, Any]:
    """``accounted_speech``; while the file is recognised, the segments done so far and, as
    PROCESSING, the audio still to decode (its segments are not known before they are done)."""
    so_far = _accounted_so_far(job)
    accounted = {name: {"seconds": a.seconds, "segments": a.segments} for name, a in so_far.items()}
    if job.status == JobStatus.IN_PROGRESS:
        total = job.media.duration * _transcribed_channels(job)
        left = total - job.progress.audio_s if job.progress is not None else total
        accounted["PROCESSING"] = {"seconds": round(max(left, 0.0), 3), "segments": 0}
    return {
        "accounted_speech": accounted,
        "total_segments": sum(a.segments for a in so_far.values()),
        "total_speech": round(sum(a.seconds for a in so_far.values()), 3),
    }


def file_progress(job: JobDocument) -> float:
    """How much of the file's work is done, 0..1: finished files 1, running ones by their audio
    decoded (never 1 before they finish)."""
    if job.status.finished:
        return 1.0
    if job.status == JobStatus.IN_PROGRESS and job.progress is not None:
        return min(job.progress.fraction, 0.999)
    return 0.0


def _tally(groups: dict[str, dict[str, float]], name: str, size: int) -> None:
    entry = groups.setdefault(name, {"bytes": 0, "files": 0})
    entry["bytes"] += size
    entry["files"] += 1


def _reached(job: JobDocument, stage: str) -> bool:
    return job.status == JobStatus.COMPLETED or STAGE_ORDER.index(job.stage.value) >= STAGE_ORDER.index(stage)


def _eta(jobs: list[JobDocument], now: datetime) -> float:
    """Seconds left: the audio still to do at the real-time factor the batch has shown so far
    (finished files, else the files being decoded now). Only files in the work queue count: a
    paused or idle file is not worked on, so a paused batch reports 0."""
    rates = [
        (j.completed_at - j.started_at).total_seconds() / j.media.duration
        for j in jobs
        if j.status == JobStatus.COMPLETED and j.completed_at and j.started_at and j.media.duration > 0
    ] or [
        (now - j.started_at).total_seconds() / (j.progress.audio_s / _transcribed_channels(j))
        for j in jobs
        if j.status == JobStatus.IN_PROGRESS and j.started_at and j.progress and j.progress.audio_s > 0
    ]
    rate = sum(rates) / len(rates) if rates else 0.5
    queued = [j for j in jobs if not j.status.finished and j.control == Control.RUNNING]
    left = sum(j.media.duration * (1.0 - file_progress(j)) for j in queued)
    return round(left * rate, 1)


def _transcribed_channels(job: JobDocument) -> int:
    return 1 if job.media.redundant_channel else max(job.media.channels, 1)


def render_batch_status(batch: str, jobs: list[JobDocument], now: datetime | None = None) -> dict[str, Any]:
    """The batch's accounting; ``progress`` counts the running files' audio decoded so far."""
    control, status, recognition = _accounting(jobs)
    files = len(jobs) or 1
    total_audio, total_audio_ch = _audio_seconds(jobs)
    total_speech = round(sum(a.seconds for j in jobs for a in _accounted_so_far(j).values()), 3)
    return {
        "ETA": _eta(jobs, now or datetime.now(UTC)),
        "accounted_control": control,
        "accounted_recognition": recognition,
        "accounted_status": status,
        "batch": batch,
        "diarization": round(sum(_reached(j, "DIARIZED") for j in jobs) / files, 4),
        "normalization": round(sum(_reached(j, "NORMALIZED") for j in jobs) / files, 4),
        "progress": _batch_progress(jobs),
        "recognition": round(sum(_reached(j, "RECOGNIZED") for j in jobs) / files, 4),
        "speech2audio_rate": round(total_speech / total_audio, 7) if total_audio else 0.0,
        "speech2audio_rate_ch": round(total_speech / total_audio_ch, 7) if total_audio_ch else 0.0,
        "total_audio": round(total_audio, 3),
        "total_audio_ch": round(total_audio_ch, 3),
        "total_bytes": sum(j.media.size for j in jobs),
        "total_files": len(jobs),
        "total_segments": sum(a.segments for j in jobs for a in _accounted_so_far(j).values()),
        "total_speech": total_speech,
    }


def _batch_progress(jobs: list[JobDocument]) -> float:
    """Files done plus the running ones' fractions, over the files; 1 only when all are finished."""
    if not jobs:
        return 0.0
    progress = round(sum(file_progress(j) for j in jobs) / len(jobs), 4)
    return progress if all(j.status.finished for j in jobs) else min(progress, 0.9999)


Tally = dict[str, dict[str, float]]


def _accounting(jobs: list[JobDocument]) -> tuple[Tally, Tally, Tally]:
    """Bytes and files per control state and per process state; speech per recognition status."""
    control: Tally = {}
    status: Tally = {}
    recognition: Tally = {}
    for job in jobs:
        _tally(control, control_of(job), job.media.size)
        _tally(status, job.stage.value, job.media.size)
        for name, accounted in _accounted_so_far(job).items():
            entry = recognition.setdefault(name, {"seconds": 0.0, "segments": 0})
            entry["seconds"] = round(entry["seconds"] + accounted.seconds, 3)
            entry["segments"] += accounted.segments
    return control, status, recognition


def _audio_seconds(jobs: list[JobDocument]) -> tuple[float, float]:
    """The batch's audio in seconds, and in channel-seconds (a duplicated channel counts once)."""
    total = sum(j.media.duration for j in jobs)
    per_channel = sum(
        j.media.duration * (1 if j.media.redundant_channel else max(j.media.channels, 1)) for j in jobs
    )
    return total, per_channel
