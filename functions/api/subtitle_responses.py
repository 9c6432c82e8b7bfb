"""Subtitle and plain-text answers for the dialects' result endpoints (``format=srt|vtt|txt|tsv``).

The rendering is ``functions.common.render_subtitles``; here only what every dialect's route adds
to it: which ``format`` values are subtitles, and the file name a browser or ``curl -OJ`` saves.
"""

from __future__ import annotations

from fastapi import Request, Response

from functions.api.poll_cache import PolledJob, job_response
from functions.api.service import JobService
from functions.common.errors import NotFound
from functions.common.jobs import JobDocument
from functions.common.render_subtitles import FORMATS, attachment, file_name
from functions.common.render_subtitles import render as render_subtitles

SUBTITLE_FORMATS = tuple(FORMATS)


def subtitle_format(given: str | None) -> str | None:
    """``given`` (any case) when it names a subtitle or plain format, else None."""
    chosen = (given or "").lower()
    return chosen if chosen in FORMATS else None


def as_download(response: Response, job: JobDocument, fmt: str) -> Response:
    """The response with a ``Content-Disposition`` naming the file after the job's media."""
    if response.status_code == 200:
        response.headers["Content-Disposition"] = attachment(file_name(job.filename or job.id, fmt))
    return response


async def subtitle_download(
    request: Request, svc: JobService, polled: PolledJob, fmt: str, cache_name: str, gone: str
) -> Response:
    """A completed job's transcript as a ``fmt`` file, rendered once per version of the job
    (``cache_name`` names the rendering); ``gone`` is the 404's text once it is no longer stored."""

    async def render() -> str:
        transcript = await svc.transcript(polled.job)
        if transcript is None:
            raise NotFound(gone)
        return render_subtitles(transcript, fmt)

    answer = await job_response(request, polled, cache_name, render, FORMATS[fmt])
    return as_download(answer, polled.job, fmt)
