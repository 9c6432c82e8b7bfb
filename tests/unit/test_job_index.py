from functions.common.job_index import SHARDS, FileFacts, JobRow, id_time, index_prefix
from functions.common.jobs import (
    Control,
    JobDocument,
    JobRepository,
    JobStatus,
    MediaFacts,
    Progress,
    Stage,
    WatsonCallback,
    new_job_id,
)
from functions.common.state_store import MemoryStateStore


async def test_rows_follow_the_job_through_create_change_and_delete() -> None:
    store = MemoryStateStore()
    jobs = JobRepository(store)
    first, second = new_job_id(), new_job_id()
    await jobs.create(JobDocument(id=first, tenant="t", tag="a", filename="x.wav"))
    await jobs.create(JobDocument(id=second, tenant="t", tag="b", filename="y.wav"))

    def fail(job: JobDocument) -> bool:
        job.status, job.failure_reason = JobStatus.FAILED, "no audio"
        return True

    await jobs.change("t", first, fail)
    rows = await jobs.index.rows("t")
    assert [r.id for r in rows] == [second, first]  # newest first
    assert (rows[1].status, rows[1].failure_reason, rows[1].tag) == ("FAILED", "no audio", "a")
    await jobs.delete("t", second)
    assert [r.id for r in await jobs.index.rows("t")] == [first]
    assert await jobs.index.rows("other") == []


async def test_rebuild_recreates_the_index_from_the_documents() -> None:
    store = MemoryStateStore()
    jobs = JobRepository(store)
    ids = [new_job_id() for _ in range(40)]
    callback = WatsonCallback(url="https://x", events=[], user_token="mine")
    for n, job_id in enumerate(ids):  # Watson jobs with their token; batch files with their facts
        batch, watson = ("b1", None) if n % 2 else ("", callback)
        await jobs.create(JobDocument(id=job_id, tenant="t", batch=batch, callback=watson))
    before = await jobs.index.rows("t")
    assert before[0].file is not None or before[1].file is not None
    for key in await store.list_keys(index_prefix("t")):
        await store.delete(key)
    assert await jobs.index.rows("t") == []
    assert await jobs.rebuild_index("t") == 40
    assert await jobs.index.rows("t") == before
    assert len(await store.list_keys(index_prefix("t"))) <= SHARDS


def test_the_creation_time_is_read_from_the_id() -> None:
    job = JobDocument(id=new_job_id(), tenant="t")
    assert abs((id_time(job.id) - job.created_at).total_seconds()) < 1


async def test_a_row_holds_what_lists_render_and_changes_only_with_the_job_s_state() -> None:
    store = MemoryStateStore()
    jobs = JobRepository(store)
    callback = WatsonCallback(url="https://x", events=[], user_token="mine")
    media = MediaFacts(size=100, duration=4.0, channels=2)
    job = JobDocument(id=new_job_id(), tenant="t", batch="b1", callback=callback, media=media)
    await jobs.create(job)
    shard_etags = await store.versions(index_prefix("t"))

    def progress(current: JobDocument) -> bool:
        current.progress = Progress(audio_s=1.0, total_s=8.0)
        return True

    await jobs.change("t", job.id, progress)  # progress alone: the row stays as it was
    assert await store.versions(index_prefix("t")) == shard_etags

    def start(current: JobDocument) -> bool:
        current.status, current.stage = JobStatus.IN_PROGRESS, Stage.RECOGNIZING
        current.control = Control.RUNNING
        return True

    changed = await jobs.change("t", job.id, start)
    assert changed is not None
    (row,) = await jobs.index.rows("t")
    assert (row.status, row.user_token) == ("IN_PROGRESS", "mine")
    assert row.updated_at == changed.updated_at.isoformat()
    assert row.file == FileFacts(control="RUNNING", stage="RECOGNIZING", size=100, duration=4.0, channels=2)


def test_rows_written_before_the_new_fields_still_read() -> None:
    old = ["COMPLETED", "2026-01-01T00:00:00+00:00", "tag", "a.wav", "trd", "", "", ""]
    row = JobRow.decode("id-1", old)
    assert (row.status, row.filename, row.updated_at, row.file) == ("COMPLETED", "a.wav", "", None)
    assert JobRow.decode("id-1", row.encode()) == row
