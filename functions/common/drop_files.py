"""Which job holds a drop-folder file (``incoming/<batch>/<file>``): one record per name.

Two markers in the state bucket, written with conditional writes like every document:

- per version (``bucket/key@etag``, ``jobs.drop_marker_key``): a repeated event for one object
  finds the same job (deliveries are at least once);
- per name (``bucket/key``, here): the job of the file's current version. A new object under the
  same key is a new version of that file, as TRD's batch API sees it: it takes the name over and
  the job of the version it replaces is removed with its results, so a batch holds one record per
  name. Versions are ordered by the bucket's sequencer when events carry one (a late event of an
  older version does not take the name back; on SQS events arrive unordered), else by arrival.
"""

from __future__ import annotations

import hashlib

from pydantic import BaseModel

from functions.common.jobs import JobDocument
from functions.common.media_store import INCOMING
from functions.common.state_store import Document, StateStore, update


class NameHolder(BaseModel):
    tenant: str
    job_id: str
    etag: str
    sequencer: str = ""


class Superseded(Exception):
    """A newer version of the file holds its name: this version gets no record."""


def name_marker_key(bucket: str, key: str) -> str:
    return f"names/{hashlib.sha256(f'{bucket}/{key}'.encode()).hexdigest()}.json"


def drop_result_base(job: JobDocument) -> str:
    """``results/<batch>/<the file's path in its batch>``: files of one name in different subfolders
    (``incoming/b/a/x.wav``, ``incoming/b/c/x.wav``) get results of their own."""
    folder = f"{INCOMING}{job.batch}/"
    path = job.media.key[len(folder) :] if job.media.key.startswith(folder) else job.filename
    return f"results/{job.batch}/{path}"


def drop_result_keys(job: JobDocument) -> list[str]:
    """Where transcribe writes a drop-folder file's result for S3 readers (JSON and CSV)."""
    base = drop_result_base(job)
    return [f"{base}.json", f"{base}.csv"]


def newer(sequencer: str, than: str) -> bool:
    """S3/MinIO sequencers are hex and SeaweedFS's are mtimes: equal-width strings compare as numbers
    (AWS: pad the shorter with zeros). Without both, the later arrival counts as newer."""
    if not sequencer or not than:
        return True
    width = max(len(sequencer), len(than))
    return sequencer.lower().zfill(width) > than.lower().zfill(width)


async def name_holder(state: StateStore, bucket: str, key: str) -> NameHolder | None:
    found = await state.get(name_marker_key(bucket, key))
    return NameHolder.model_validate(found[0]) if found else None


async def take_name(state: StateStore, bucket: str, key: str, holder: NameHolder) -> NameHolder | None:
    """Give the name to ``holder``; the holder it replaces (None when none, or the same job).

    Raises ``Superseded`` when a different, newer version holds the name already."""
    replaced: list[NameHolder] = []

    def mutate(doc: Document | None) -> Document | None:
        replaced.clear()
        current = NameHolder.model_validate(doc) if doc else None
        if current is not None and current.job_id == holder.job_id:
            return None  # already ours (a repeated event)
        if (
            current is not None
            and current.etag != holder.etag
            and not newer(holder.sequencer, current.sequencer)
        ):
            raise Superseded(f"{key} has a newer version")
        if current is not None:
            replaced.append(current)
        return holder.model_dump()

    await update(state, name_marker_key(bucket, key), mutate)
    return replaced[0] if replaced else None


async def move_name(state: StateStore, bucket: str, key: str, old_job_id: str, new_job_id: str) -> None:
    """A reset: the file's new job holds the name its old job held (nothing if another did)."""

    def mutate(doc: Document | None) -> Document | None:
        if doc is None or doc.get("job_id") != old_job_id:
            return None
        return {**doc, "job_id": new_job_id}

    await update(state, name_marker_key(bucket, key), mutate)
