"""A running transcription's progress, written into its job document as it goes.

The engine yields segments lazily, a batch of windows at a time: a burst of segments, then a
long wait while the next batch is decoded. ``ProgressReporter`` counts what arrived (audio decoded
so far, segments, their speech by TRD status) and writes it as ``JobDocument.progress`` at most
once every ``interval_s``, and only when it changed: right after a segment once the interval has
passed, and while waiting for the next segment (so a burst's last segments are not left unwritten
through the next batch's decoding).

Each write is the job's conditional update and doubles as the stop check: a job that is no longer
IN_PROGRESS is not written, and ``stopped`` tells the caller to stop between segments.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator

from functions.common.batch_status import transcribed_channels
from functions.common.jobs import Accounted, JobDocument, JobRepository, JobStatus, Progress
from functions.common.transcript import Segment

INTERVAL_S = 2.0


def segment_status(segment: Segment) -> str:
    """The TRD status a segment is accounted under."""
    return "RECOGNIZED" if segment.text.strip() else "NO_MATCH"


def account(totals: dict[str, Accounted], segment: Segment) -> None:
    """Add the segment's speech seconds and count to its status's entry."""
    entry = totals.setdefault(segment_status(segment), Accounted())
    entry.seconds = round(entry.seconds + segment.end - segment.start, 3)
    entry.segments += 1


class ProgressReporter:
    def __init__(
        self,
        job: JobDocument,
        jobs: JobRepository,
        interval_s: float = INTERVAL_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._tenant, self._job_id = job.tenant, job.id
        self._jobs = jobs
        self._interval_s = interval_s
        self._monotonic = monotonic
        self._duration = max(job.media.duration, 0.0)
        self._progress = Progress(total_s=round(self._duration * transcribed_channels(job), 3))
        self._channels_done = 0
        self._position = 0.0  # the furthest segment end in the current channel
        self._dirty = False  # counted since the last write
        self._last_write = monotonic()
        self.stopped = False
        self.writes = 0

    @property
    def progress(self) -> Progress:
        return self._progress.model_copy(deep=True)

    def add(self, segment: Segment) -> None:
        self._position = max(self._position, min(segment.end, self._duration))
        account(self._progress.accounted, segment)
        self._progress.segments += 1
        self._update_audio()

    def channel_done(self) -> None:
        self._channels_done += 1
        self._position = 0.0
        self._update_audio()

    def _update_audio(self) -> None:
        decoded = self._channels_done * self._duration + self._position
        self._progress.audio_s = round(min(decoded, self._progress.total_s), 3)
        self._dirty = True

    @property
    def due(self) -> bool:
        return self._monotonic() - self._last_write >= self._interval_s

    async def flush(self) -> None:
        """Write the progress if it changed (else only look at the job): either way, note a stop."""
        self._last_write = self._monotonic()
        if not self._dirty:
            current = await self._jobs.find(self._tenant, self._job_id)
        else:
            snapshot = self.progress

            def record(job: JobDocument) -> bool:
                if job.status != JobStatus.IN_PROGRESS:
                    return False
                job.progress = snapshot
                return True

            current = await self._jobs.change(self._tenant, self._job_id, record)
            self.writes += 1
            self._dirty = False
        if current is None or current.status != JobStatus.IN_PROGRESS:
            self.stopped = True

    async def pull(self, lazy: Iterator[Segment]) -> Segment | None:
        """The engine's next segment (None at the end), pulled off the event loop. While the
        engine works on it, what is not written yet is written once the interval has passed."""
        pending = asyncio.ensure_future(asyncio.to_thread(next, lazy, None))
        if self._dirty:
            left_s = self._interval_s - (self._monotonic() - self._last_write)
            done, _ = await asyncio.wait({pending}, timeout=max(left_s, 0.0))
            if not done:
                await self.flush()
        return await pending
