from functions.common.job_index import SHARDS, id_time, index_prefix
from functions.common.jobs import JobDocument, JobRepository, JobStatus, new_job_id
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
    for job_id in ids:
        await jobs.create(JobDocument(id=job_id, tenant="t"))
    before = await jobs.index.rows("t")
    for key in await store.list_keys(index_prefix("t")):
        await store.delete(key)
    assert await jobs.index.rows("t") == []
    assert await jobs.rebuild_index("t") == 40
    assert await jobs.index.rows("t") == before
    assert len(await store.list_keys(index_prefix("t"))) <= SHARDS


def test_the_creation_time_is_read_from_the_id() -> None:
    job = JobDocument(id=new_job_id(), tenant="t")
    assert abs((id_time(job.id) - job.created_at).total_seconds()) < 1
