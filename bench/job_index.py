"""What the job index is worth: list and query latency against reading every job document.

On the real embedded SeaweedFS, for each size (default 10,000 and 100,000 jobs of one tenant,
spread over 30 days): write the job documents, build the index from them (``rebuild_index``),
then time
- the first page of ``GET /trd/v3/job`` (100 rows), and a filtered page of ``/trd/v3/query/job``
  (status + tag + a date range), both through the service core as the API runs them;
- the baseline: reading every job document once (what a listing without an index costs).
Prints the times and the ratio baseline / index.

    .venv/bin/python -m bench.job_index [--sizes 10000 100000] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from functions.api.service import JobQuery, JobService
from functions.common.bootstrap import Deps, bootstrap
from functions.common.jobs import JobDocument, JobStatus, job_key, new_job_id
from infra.stack import EmbeddedStack, free_port_settings

T = TypeVar("T")
STATUSES = (JobStatus.COMPLETED, JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.QUEUED)


async def bounded(concurrency: int, items: list[T], action: Callable[[T], Awaitable[Any]]) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def one(item: T) -> None:
        async with gate:
            await action(item)

    await asyncio.gather(*(one(item) for item in items))


async def populate(deps: Deps, tenant: str, count: int, concurrency: int) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    documents = []
    for n in range(count):
        job = JobDocument(
            id=new_job_id(),
            tenant=tenant,
            status=STATUSES[n % 4],
            tag=f"tag-{n % 10}",
            filename=f"call-{n}.wav",
            created_at=start + timedelta(minutes=n * 30 * 24 * 60 / count),
        )
        documents.append(job)  # fmt: skip
    await bounded(
        concurrency, documents, lambda j: deps.state.put(job_key(tenant, j.id), j.model_dump(mode="json"))
    )
    await deps.jobs.rebuild_index(tenant)


async def timed(action: Callable[[], Awaitable[Any]], repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        await action()
        best = min(best, time.perf_counter() - started)
    return best


async def read_everything(deps: Deps, tenant: str, concurrency: int) -> None:
    ids = await deps.jobs.list_ids(tenant)
    await bounded(concurrency, ids, lambda job_id: deps.jobs.find(tenant, job_id))


async def measure(deps: Deps, count: int, concurrency: int) -> None:
    tenant = f"bench-{count}"
    started = time.perf_counter()
    await populate(deps, tenant, count, concurrency)
    print(f"\n{count:,} jobs written and indexed in {time.perf_counter() - started:.1f} s")
    service = JobService(deps)
    start, end = datetime(2026, 1, 10, tzinfo=UTC), datetime(2026, 1, 20, tzinfo=UTC)
    filtered = JobQuery(limit=100, status="COMPLETED", tag="tag-3", start=start, end=end)
    first_page = await timed(lambda: service.query(tenant, JobQuery(limit=100)))
    query_page = await timed(lambda: service.query(tenant, filtered))
    baseline = await timed(lambda: read_everything(deps, tenant, concurrency), repeats=1)
    print(f"  first page (100 of {count:,})     : {first_page * 1000:9.1f} ms")
    print(f"  filtered query page             : {query_page * 1000:9.1f} ms")
    print(f"  baseline: read every job once   : {baseline * 1000:9.1f} ms")
    print(f"  ratio baseline / first page     : {baseline / first_page:9.1f}x")
    print(f"  ratio baseline / filtered query : {baseline / query_page:9.1f}x")


async def main_async(sizes: list[int], concurrency: int) -> None:
    with tempfile.TemporaryDirectory(prefix="shenava-bench-") as tmp:
        stack = EmbeddedStack(free_port_settings(Path(tmp)))
        settings = await stack.start()
        try:
            async with bootstrap(settings) as deps:
                for count in sizes:
                    await measure(deps, count, concurrency)
        finally:
            await stack.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.job_index")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    asyncio.run(main_async(args.sizes, args.concurrency))


if __name__ == "__main__":
    main()
