"""Subtitle and plain-text answers for the dialects' result endpoints (``format=srt|vtt|txt|tsv``).

The rendering is ``functions.common.render_subtitles``; here only what every dialect's route adds
to it: which ``format`` values are subtitles, and the file name a browser or ``curl -OJ`` saves.
"""

from __future__ import annotations

from fastapi import Response

from functions.common.jobs import JobDocument
from functions.common.render_subtitles import FORMATS, attachment, file_name

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
