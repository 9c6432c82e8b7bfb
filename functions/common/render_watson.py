"""Watson's shapes for a job and its transcript (used by the API and by notify)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from functions.common.job_index import JobRow
from functions.common.jobs import JobDocument, JobStatus, RecognitionOptions
from functions.common.reasons import public_reason
from functions.common.transcript import Segment, Transcript

WATSON_STATUS = {
    JobStatus.QUEUED: "waiting",
    JobStatus.IN_PROGRESS: "processing",
    JobStatus.COMPLETED: "completed",
    JobStatus.FAILED: "failed",
    JobStatus.STOPPED: "failed",
    JobStatus.DELETED: "failed",
}


def iso_ms(job_time: Any) -> str:
    return job_time.strftime("%Y-%m-%dT%H:%M:%S.") + f"{job_time.microsecond // 1000:03d}Z"


def render_status(job: JobDocument) -> dict[str, Any]:
    user_token = job.callback.user_token if job.callback else ""
    return _status(job.id, job.created_at, job.updated_at, job.status, user_token, job.failure_reason,
                   job.callback_failure_reason)  # fmt: skip


def render_status_row(row: JobRow) -> dict[str, Any]:
    """``render_status`` of the job an index row lists (``updated``: its last change of state)."""
    created = datetime.fromisoformat(row.created_at)
    updated = datetime.fromisoformat(row.updated_at) if row.updated_at else created
    return _status(row.id, created, updated, JobStatus(row.status), row.user_token, row.failure_reason,
                   row.callback_failure_reason)  # fmt: skip


def _status(
    job_id: str, created: datetime, updated: datetime, status: JobStatus, user_token: str,
    failure_reason: str, callback_failure_reason: str,
) -> dict[str, Any]:  # fmt: skip
    body: dict[str, Any] = {
        "id": job_id,
        "created": iso_ms(created),
        "updated": iso_ms(updated),
        "status": WATSON_STATUS[status],
    }
    if user_token:
        body["user_token"] = user_token
    failed = status in {JobStatus.FAILED, JobStatus.STOPPED}
    warnings = [public_reason(failure_reason)] if failed else []
    warnings.append(callback_failure_reason)
    if any(warnings):
        body["warnings"] = [w for w in warnings if w]
    return body


def render_results(transcript: Transcript, options: RecognitionOptions) -> list[dict[str, Any]]:
    """``results`` of a completed recognition: one final result per segment."""
    # Segments with no text are the engine's no-speech decisions: Watson has no result for them.
    results = [_result(segment, options) for segment in transcript.segments if segment.text.strip()]
    entry: dict[str, Any] = {"result_index": 0, "results": results}
    if options.speaker_labels:
        entry["speaker_labels"] = [
            {
                "from": w.start,
                "to": w.end,
                "speaker": _speaker_number(s),
                "confidence": w.confidence,
                "final": True,
            }
            for s in transcript.segments
            for w in s.words
        ]
    return [entry]


def _result(segment: Segment, options: RecognitionOptions) -> dict[str, Any]:
    alternative: dict[str, Any] = {
        "transcript": segment.text.strip() + " ",
        "confidence": round(segment.confidence, 3),
    }
    if options.timestamps:
        alternative["timestamps"] = [[w.text, round(w.start, 2), round(w.end, 2)] for w in segment.words]
    if options.word_confidence:
        alternative["word_confidence"] = [[w.text, round(w.confidence, 3)] for w in segment.words]
    # max_alternatives > 1: further transcripts, best first; as in Watson, only the first has
    # a confidence, timestamps and word confidences.
    others = [{"transcript": a.text.strip() + " "} for a in segment.alternatives]
    result: dict[str, Any] = {"final": True, "alternatives": [alternative, *others]}
    if segment.flags:
        result["quality_flags"] = list(segment.flags)  # Shenava's addition; Watson's SDKs ignore it
    return result


def _speaker_number(segment: Segment) -> int:
    if segment.speaker is None:
        return segment.channel
    digits = "".join(ch for ch in segment.speaker if ch.isdigit())
    return int(digits) if digits else 0
