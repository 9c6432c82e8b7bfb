"""The TRD batch status (``/trd/transcription/status/batch/<batch>``), as sums kept by file state.

A batch's status adds up its files. All of it but the running files' progress changes only when a
file changes state, and each file's share is in its index row (``FileFacts``). ``BatchTotals``
holds those sums: the API keeps one per batch and index shard and adds the shards' together, so a
file that changes state costs one shard's sums again, never the whole batch's. The files being
recognised (IN_PROGRESS) add their live part at read time, from their documents: the audio decoded
so far, their segments so far, and their pace for the ETA.

``render_batch_status(batch, jobs)`` is the same status from the documents themselves.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from functions.common.job_index import FileFacts
from functions.common.jobs import Accounted, Control, JobDocument, JobStatus, file_facts

STAGE_ORDER = ("INITIAL", "NORMALIZING", "NORMALIZED", "DIARIZING", "DIARIZED", "RECOGNIZING", "RECOGNIZED")
MILESTONES = ("NORMALIZED", "DIARIZED", "RECOGNIZED")
FINISHED = frozenset(s.value for s in JobStatus if s.finished)
DEFAULT_RATE = 0.5  # seconds of work per second of audio, before the batch has shown its own
Tally = dict[str, dict[str, float]]
SUMS = ("files", "finished", "bytes", "audio", "audio_ch", "rate_sum", "rate_count", "queued_audio")


def state_control(status: str, control: str) -> str:
    if status == JobStatus.COMPLETED:
        return "FINISHED"
    return "FAILED" if status in FINISHED else control


def control_of(job: JobDocument) -> str:
    return state_control(job.status.value, job.control.value)


def transcribed_channels(job: JobDocument) -> int:
    return 1 if job.media.redundant_channel else max(job.media.channels, 1)


def accounted_so_far(job: JobDocument) -> dict[str, Accounted]:
    """A finished job's accounting; a running one's segments done so far (its progress)."""
    if job.status == JobStatus.IN_PROGRESS and job.progress is not None:
        return job.progress.accounted
    return job.accounted


def file_progress(job: JobDocument) -> float:
    """How much of the file's work is done, 0..1: finished files 1, running ones by their audio
    decoded (never 1 before they finish)."""
    if job.status.finished:
        return 1.0
    if job.status == JobStatus.IN_PROGRESS and job.progress is not None:
        return min(job.progress.fraction, 0.999)
    return 0.0


def _tally(groups: Tally, name: str, size: float, files: float = 1) -> None:
    entry = groups.setdefault(name, {"bytes": 0, "files": 0})
    entry["bytes"] += size
    entry["files"] += files


def _speech(groups: Tally, name: str, seconds: float, segments: float) -> None:
    entry = groups.setdefault(name, {"seconds": 0.0, "segments": 0})
    entry["seconds"] += seconds
    entry["segments"] += segments


def _merge(into: Tally, other: Tally, keys: tuple[str, str]) -> None:
    for name, entry in other.items():
        mine = into.setdefault(name, {keys[0]: 0, keys[1]: 0})
        for key in keys:
            mine[key] += entry[key]


def _seconds_between(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


@dataclass
class BatchTotals:
    """Sums over a set of a batch's files; running files count here only by what their row says."""

    files: int = 0
    finished: int = 0
    bytes: int = 0
    audio: float = 0.0
    audio_ch: float = 0.0  # channel-seconds (a duplicated channel counts once)
    reached: dict[str, int] = field(default_factory=dict)  # milestone stage -> files past it
    control: Tally = field(default_factory=dict)
    status: Tally = field(default_factory=dict)
    recognition: Tally = field(default_factory=dict)  # speech of the files that are not running
    rate_sum: float = 0.0  # completed files' seconds of work per second of audio
    rate_count: int = 0
    queued_audio: float = 0.0  # audio of the waiting files in the work queue (none of it done)
    running: list[str] = field(default_factory=list)  # ids of the IN_PROGRESS files

    def add(self, job_id: str, status: str, facts: FileFacts) -> None:
        self.files += 1
        self.bytes += facts.size
        self.audio += facts.duration
        self.audio_ch += facts.duration * facts.channels
        _tally(self.control, state_control(status, facts.control), facts.size)
        _tally(self.status, facts.stage, facts.size)
        stage = STAGE_ORDER.index(facts.stage)
        for milestone in MILESTONES:
            if status == JobStatus.COMPLETED or stage >= STAGE_ORDER.index(milestone):
                self.reached[milestone] = self.reached.get(milestone, 0) + 1
        if status == JobStatus.IN_PROGRESS:
            self.running.append(job_id)  # its progress is read live
            return
        self.finished += status in FINISHED
        for name, seconds, segments in facts.accounted:
            _speech(self.recognition, name, seconds, segments)
        if status == JobStatus.COMPLETED and facts.started_at and facts.completed_at and facts.duration > 0:
            self.rate_sum += _seconds_between(facts.started_at, facts.completed_at) / facts.duration
            self.rate_count += 1
        if status not in FINISHED and facts.control == Control.RUNNING:
            self.queued_audio += facts.duration

    def merge(self, other: BatchTotals) -> None:
        for name in SUMS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for milestone, count in other.reached.items():
            self.reached[milestone] = self.reached.get(milestone, 0) + count
        _merge(self.control, other.control, ("bytes", "files"))
        _merge(self.status, other.status, ("bytes", "files"))
        _merge(self.recognition, other.recognition, ("seconds", "segments"))
        self.running.extend(other.running)

    @classmethod
    def of(cls, parts: Iterable[BatchTotals]) -> BatchTotals:
        total = cls()
        for part in parts:
            total.merge(part)
        return total


def _eta(totals: BatchTotals, running: Sequence[JobDocument], now: datetime) -> float:
    """Seconds left: the audio still to do at the real-time factor the batch has shown so far
    (finished files, else the files being decoded now). Only files in the work queue count: a
    paused or idle file is not worked on, so a paused batch reports 0."""
    if totals.rate_count:
        rate = totals.rate_sum / totals.rate_count
    else:
        rates = [
            (now - j.started_at).total_seconds() / (j.progress.audio_s / transcribed_channels(j))
            for j in running
            if j.status == JobStatus.IN_PROGRESS and j.started_at and j.progress and j.progress.audio_s > 0
        ]
        rate = sum(rates) / len(rates) if rates else DEFAULT_RATE
    queued = [j for j in running if not j.status.finished and j.control == Control.RUNNING]
    left = totals.queued_audio + sum(j.media.duration * (1.0 - file_progress(j)) for j in queued)
    return round(left * rate, 1)


def _progress(totals: BatchTotals, running: Sequence[JobDocument]) -> float:
    """Files done plus the running ones' fractions, over the files; 1 only when all are finished."""
    if not totals.files:
        return 0.0
    progress = round((totals.finished + sum(file_progress(j) for j in running)) / totals.files, 4)
    return progress if totals.finished == totals.files else min(progress, 0.9999)


def render_batch_totals(
    batch: str, totals: BatchTotals, running: Sequence[JobDocument], now: datetime | None = None
) -> dict[str, Any]:
    """The batch's status: ``totals`` and the documents of its running files (``totals.running``)."""
    recognition: Tally = {name: dict(entry) for name, entry in totals.recognition.items()}
    for job in running:
        for name, accounted in accounted_so_far(job).items():
            _speech(recognition, name, accounted.seconds, accounted.segments)
    total_speech = round(sum(entry["seconds"] for entry in recognition.values()), 3)
    files = totals.files or 1
    return {
        "ETA": _eta(totals, running, now or datetime.now(UTC)),
        "accounted_control": totals.control,
        "accounted_recognition": {
            name: {"seconds": round(e["seconds"], 3), "segments": int(e["segments"])}
            for name, e in recognition.items()
        },
        "accounted_status": totals.status,
        "batch": batch,
        "diarization": round(totals.reached.get("DIARIZED", 0) / files, 4),
        "normalization": round(totals.reached.get("NORMALIZED", 0) / files, 4),
        "progress": _progress(totals, running),
        "recognition": round(totals.reached.get("RECOGNIZED", 0) / files, 4),
        "speech2audio_rate": round(total_speech / totals.audio, 7) if totals.audio else 0.0,
        "speech2audio_rate_ch": round(total_speech / totals.audio_ch, 7) if totals.audio_ch else 0.0,
        "total_audio": round(totals.audio, 3),
        "total_audio_ch": round(totals.audio_ch, 3),
        "total_bytes": totals.bytes,
        "total_files": totals.files,
        "total_segments": int(sum(entry["segments"] for entry in recognition.values())),
        "total_speech": total_speech,
    }


def totals_of(jobs: Iterable[JobDocument]) -> BatchTotals:
    totals = BatchTotals()
    for job in jobs:
        totals.add(job.id, job.status.value, file_facts(job))
    return totals


def render_batch_status(batch: str, jobs: list[JobDocument], now: datetime | None = None) -> dict[str, Any]:
    """The batch's status from its files' documents."""
    running = [job for job in jobs if job.status == JobStatus.IN_PROGRESS]
    return render_batch_totals(batch, totals_of(jobs), running, now)
