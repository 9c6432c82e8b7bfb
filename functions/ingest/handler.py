"""ingest: an object landed in the media bucket → a job with media facts → ``job.queued``.

Stages: find or register the job (API uploads carry their job id in the key; drop-folder files
get one, remembered under their ``bucket/key@etag`` so a repeated event finds the same job, and
their batch's recognition options: ``drop_language``, or what ``incoming/<batch>/_config.json``
says; a new version of a file replaces the job of the one before, see ``drop_files``; a file
registered IDLE gets its md5 at once, as TRD's batch API computes it at registration),
download (recording the file's md5 and size, so a file that turns out unreadable keeps them),
probe (ffprobe), normalise to 16 kHz PCM per channel, store the normalised audio,
record the facts, announce ``job.queued``. Media that cannot be read ends the job FAILED with
the reason. Running twice for one object leaves the same state and the same event id.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from pydantic import BaseModel, ConfigDict, ValidationError

from events.errors import PoisonError
from events.models import Event, JobQueued, ObjectCreated
from events.runner import FunctionSpec
from events.subjects import INGEST
from functions.common.audio_facts import audio_facts
from functions.common.bootstrap import Deps
from functions.common.drop_files import (
    NameHolder,
    Superseded,
    drop_result_keys,
    name_holder,
    newer,
    take_name,
)
from functions.common.errors import BadRequest
from functions.common.jobs import (
    Control,
    JobDocument,
    MediaFacts,
    RecognitionOptions,
    Stage,
    drop_marker_key,
    new_job_id,
)
from functions.common.languages import language_of_model
from functions.common.media_store import BATCH_CONFIG, INCOMING, UPLOADS, normalized_key, read_bytes
from functions.common.probe import file_md5, media_facts, normalise, probe
from functions.common.state_store import AlreadyExists
from functions.common.validation import validation_message

log = logging.getLogger("shenava.ingest")


async def handle(event: Event, deps: Deps) -> list[Event]:
    if not isinstance(event, ObjectCreated) or event.bucket != deps.settings.media_bucket:
        return []
    job = await job_for_object(event, deps)
    if job is None or not job.may_advance:
        return []  # gone, finished, or held (IDLE/PAUSED) until a start
    if job.source == "drop" and job.stage == Stage.INITIAL:
        try:
            await _batch_options(job.batch, deps)
        except PoisonError as exc:  # the batch's _config.json is wrong: say so on every file
            return await fail_job(job.tenant, job.id, str(exc), deps)
    if job.stage not in {Stage.INITIAL, Stage.NORMALIZING}:  # already normalised: a repeated event
        return [JobQueued.for_job(job.tenant, job.id, priority=job.priority)]
    await deps.jobs.change(job.tenant, job.id, _at_stage(Stage.NORMALIZING))
    try:
        facts = await _prepare_media(event, job, deps)
    except PoisonError as exc:
        return await fail_job(job.tenant, job.id, str(exc), deps)

    def record(current: JobDocument) -> bool:
        if current.stage not in {Stage.INITIAL, Stage.NORMALIZING}:
            return False
        current.media = facts.model_copy(update={"etag": current.media.etag})
        current.stage = Stage.NORMALIZED
        return True

    done = await deps.jobs.change(job.tenant, job.id, record)
    if done is None or not done.may_advance:  # paused while normalising: the stage ends here
        return []
    log.info("queued", extra={"job_id": job.id, "tenant": job.tenant})
    return [JobQueued.for_job(job.tenant, job.id, priority=job.priority)]


def _at_stage(stage: Stage) -> Callable[[JobDocument], bool]:
    def move(job: JobDocument) -> bool:
        if job.stage == stage:
            return False
        job.stage = stage
        return True

    return move


async def on_failure(event: Event, deps: Deps, reason: str) -> list[Event]:
    if not isinstance(event, ObjectCreated):
        return []
    job = await job_for_object(event, deps)
    return await fail_job(job.tenant, job.id, reason, deps) if job else []


async def fail_job(tenant: str, job_id: str, reason: str, deps: Deps) -> list[Event]:
    failed = await deps.jobs.fail(tenant, job_id, reason)
    if failed:
        log.info("failed: %s", reason, extra={"job_id": job_id, "tenant": tenant})
    return list(failed)


async def job_for_object(event: ObjectCreated, deps: Deps) -> JobDocument | None:
    if event.key.startswith(UPLOADS):
        parts = event.key[len(UPLOADS) :].split("/", 2)
        return await deps.jobs.find(parts[0], parts[1]) if len(parts) == 3 else None
    if _is_dropped_media(event.key):
        return await _register_dropped(event, deps)
    return None


def _is_dropped_media(key: str) -> bool:
    """``incoming/<batch>/<file>``, not a folder and not the batch's configuration."""
    return (
        key.startswith(INCOMING) and key.count("/") >= 2 and not key.endswith("/")
        and PurePosixPath(key).name != BATCH_CONFIG
    )  # fmt: skip


async def _register_dropped(event: ObjectCreated, deps: Deps) -> JobDocument | None:
    """A drop-folder file's job, holding the file's name: a version replaced by a newer one has none."""
    job = await _version_job(event, deps)
    if job is None:
        return None
    holder = NameHolder(tenant=job.tenant, job_id=job.id, etag=_version(event), sequencer=event.sequencer)
    try:
        replaced = await take_name(deps.state, event.bucket, event.key, holder)
    except Superseded:  # a newer version was registered first (unordered delivery): its results stay
        await _remove_version(event.bucket, event.key, holder, deps, with_results=False)
        return None
    if replaced is not None:  # the file's earlier version: its record and its result are reset
        await _remove_version(event.bucket, event.key, replaced, deps, with_results=True)
    return job


def _version(event: ObjectCreated) -> str:
    return event.etag or event.sequencer


async def _remove_version(bucket: str, key: str, holder: NameHolder, deps: Deps, with_results: bool) -> None:
    """A version's job goes with its normalised audio (and, for the one replaced, the results S3
    readers see, at the paths the new version's will take); its marker remembers that it was
    replaced, so its late events register nothing."""
    old = await deps.jobs.find(holder.tenant, holder.job_id)
    if old is not None:
        stale = drop_result_keys(old) if with_results else []
        for media_key in (normalized_key(old.tenant, old.id), *stale):
            await deps.media.delete(media_key)
        await deps.jobs.delete(old.tenant, old.id)
    dedupe = f"{bucket}/{key}@{holder.etag}"
    marker = {"tenant": holder.tenant, "job_id": holder.job_id, "object": dedupe, "replaced": True}
    await deps.state.put(drop_marker_key(dedupe), marker)
    log.info(
        "a newer version of %s replaced this one",
        key,
        extra={"job_id": holder.job_id, "tenant": holder.tenant},
    )


async def _version_job(event: ObjectCreated, deps: Deps) -> JobDocument | None:
    """The job of this version of the file: one per ``bucket/key@etag``, whoever sees it first."""
    marker = drop_marker_key(event.dedupe_key)
    tenant, job_id = deps.settings.drop_tenant, new_job_id()
    try:
        await deps.state.create(marker, {"tenant": tenant, "job_id": job_id, "object": event.dedupe_key})
    except AlreadyExists:
        found = await deps.state.get(marker)
        if found is None or found[0].get("replaced"):
            return None
        tenant, job_id = str(found[0]["tenant"]), str(found[0]["job_id"])
        existing = await deps.jobs.find(tenant, job_id)
        if existing is not None:
            return existing
        # the marker was written but the job was not (a worker died between the two): make it now
    current = await name_holder(deps.state, event.bucket, event.key)
    if (
        current is not None
        and current.etag != _version(event)
        and not newer(event.sequencer, current.sequencer)
    ):
        return None  # an older version's first event, after a newer version's
    return await _new_drop_job(event, tenant, job_id, deps)


async def _new_drop_job(event: ObjectCreated, tenant: str, job_id: str, deps: Deps) -> JobDocument | None:
    batch, filename = event.key[len(INCOMING) :].split("/", 1)
    try:
        options = await _batch_options(batch, deps)
    except PoisonError:
        options = RecognitionOptions()  # handle() fails the job with the reason
    control = Control.RUNNING if deps.settings.drop_autostart else Control.IDLE
    # A RUNNING file is downloaded at once below, which records its md5; an IDLE one is read now.
    md5 = await _object_md5(event.key, deps) if control == Control.IDLE else ""
    job = JobDocument(
        id=job_id,
        tenant=tenant,
        control=control,
        source="drop",
        batch=batch,
        filename=PurePosixPath(filename).name,
        media=MediaFacts(key=event.key, size=event.size, etag=_version(event), md5=md5),
        options=options,
    )
    try:
        await deps.jobs.create(job)
    except AlreadyExists:
        return await deps.jobs.find(tenant, job_id)
    return job


async def _object_md5(key: str, deps: Deps) -> str:
    with tempfile.TemporaryDirectory(prefix="shenava-ingest-") as tmp:
        path = Path(tmp) / "source"
        try:
            await deps.media.download(key, path)
        except FileNotFoundError:
            return ""  # gone already: a later event of the key tells the rest
        return await asyncio.to_thread(file_md5, path)


def _file_facts(md5: str, size: int) -> Callable[[JobDocument], bool]:
    def record(job: JobDocument) -> bool:
        if (job.media.md5, job.media.size) == (md5, size):
            return False
        job.media.md5, job.media.size = md5, size
        return True

    return record


async def _batch_options(batch: str, deps: Deps) -> RecognitionOptions:
    """A drop-folder batch's recognition options. The language is ``drop_language`` (TRD's
    Portuguese by default) unless ``incoming/<batch>/_config.json`` names another
    (``{"language": "en"}``, ``"auto"`` to detect); it may also ask for ``speaker_labels``.
    Read when a file is registered: write it before the batch's files."""
    options = RecognitionOptions(language=language_of_model(None, deps.settings.drop_language or "auto"))
    try:
        raw = await read_bytes(deps.media, f"{INCOMING}{batch}/{BATCH_CONFIG}")
    except FileNotFoundError:
        return options
    try:
        config = BatchConfig.model_validate_json(raw)
        language = (
            language_of_model(None, config.language) if config.language is not None else options.language
        )
    except (ValidationError, BadRequest) as exc:
        raise PoisonError(f"the batch's {BATCH_CONFIG} is not valid: {_first_problem(exc)}") from exc
    return options.model_copy(update={"language": language, "speaker_labels": config.speaker_labels})


class BatchConfig(BaseModel):
    """``incoming/<batch>/_config.json``: what a drop-folder batch asks of the pipeline."""

    model_config = ConfigDict(extra="forbid")

    language: str | None = None  # an ISO 639-1 code, or "auto"; None = the deployment's drop_language
    speaker_labels: bool = False


def _first_problem(exc: ValidationError | BadRequest) -> str:
    return str(exc) if isinstance(exc, BadRequest) else validation_message(exc, limit=1)


async def _prepare_media(event: ObjectCreated, job: JobDocument, deps: Deps) -> MediaFacts:
    if event.size > deps.settings.max_audio_bytes:
        raise PoisonError(f"the file is larger than {deps.settings.max_audio_bytes} bytes")
    with tempfile.TemporaryDirectory(prefix="shenava-ingest-") as tmp:
        source, target = Path(tmp) / "source", Path(tmp) / "normalized.wav"
        try:
            metadata = await deps.media.download(event.key, source)
        except FileNotFoundError as exc:
            raise PoisonError("the uploaded media is gone from the media bucket") from exc
        md5 = await asyncio.to_thread(file_md5, source)
        await deps.jobs.change(job.tenant, job.id, _file_facts(md5, source.stat().st_size))
        facts = await probe(source)
        limit = deps.settings.max_media_seconds
        if limit and facts.duration > limit:
            raise PoisonError(
                f"the media lasts {facts.duration:.0f} s, more than this deployment's limit of "
                f"{limit:.0f} s; long media needs the self-hosted workers (the NATS functions on containers)"
            )
        await normalise(source, target)
        heard = await asyncio.to_thread(audio_facts, target)
        out_key = normalized_key(job.tenant, job.id)
        await deps.media.put_file(out_key, target, "audio/wav", {"job-id": job.id})
    return media_facts(
        facts, key=event.key, normalized_key=out_key, content_type=metadata.get("content-type", ""),
        bandwidth=heard.bandwidth, redundant_channel=heard.redundant_channel,
    )  # fmt: skip


SPEC = FunctionSpec(INGEST, handle, on_failure)
