"""Polling at scale: every dialect's polling endpoints against ``GET /healthz``, in one run.

What it does, all on loopback:

1. starts the embedded stack (nats-server + SeaweedFS) in a temporary directory;
2. seeds one tenant with ``--jobs`` jobs (10,000 by default; see ``bench.seed_jobs``): the job
   documents are built in memory and written with plain concurrent ``put``s, and the index
   shards are written once each from the same documents (what ``rebuild-index`` would write),
   instead of registering jobs one by one through the API (minutes for 10,000);
3. starts the API as deployed (``python -m functions.api``, ``--api-processes`` of them on one
   port), with the TRD rate limit off (``SHENAVA_RATE_LIMIT_PER_MINUTE=0``: one tenant polls far
   faster than a real one would);
4. for each number of clients (8 and 64 by default): every polling endpoint, each between two
   ``/healthz`` runs, each run for ``--seconds`` after a short warm-up and at most ``--budget``
   requests; each client is one keep-alive connection with one request in flight;
5. prints requests per second, p50 and p99, each endpoint's throughput as a share of
   ``/healthz``'s (the mean of the runs just before and after it), and whether it
   meets issue 17's bar: a job's status ("single") at least 50 % with p99 <= 50 ms at 8 clients,
   a listing at least 25 %.

Single-job reads rotate over the jobs clients wait for (the 50 pending ones for status polls,
100 completed ones for results), so a job is polled many times a second and mostly answered from
the API process's copy (at most ``SHENAVA_API_POLL_MAX_AGE_S`` old). The "fresh" rows poll a
different job every time, so every poll reads its document from the bucket: what a poll costs
when each of many clients polls only its own job, about once a second. The Kashf row is a
dataset's status, not a job's. The load generator shares the machine's cores with the API and
the stack: the ratios mean more than the absolute figures.

    .venv/bin/python -m bench.api_load [--jobs 10000] [--clients 8 64] [--seconds 4]
                                       [--budget 20000] [--api-processes 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.http_load import Call, Outcome, load
from bench.seed_jobs import BATCH, SeededTenant, seed
from functions.common.apikeys import create_key
from functions.common.bootstrap import bootstrap
from functions.common.settings import Settings
from infra.probes import http_ok
from infra.stack import EmbeddedStack, free_port_settings

TENANT = "bench"
DATASET = "bench-texts"
WARMUP_S = 0.5
SINGLE_SHARE, LISTING_SHARE, TARGET_P99_S = 0.5, 0.25, 0.050
HOST = "127.0.0.1"


@dataclass(frozen=True)
class Endpoint:
    name: str
    # "floor"; "single": one job's status; "fresh": one job, a different one every poll (its
    # document read each time); "listing"; "dataset": a Kashf dataset's status (not a job)
    kind: str
    call: Callable[[int], Call]
    expected: frozenset[int] = frozenset({200})


def rotate(ids: list[str]) -> Callable[[int], str]:
    return lambda n: ids[n % len(ids)]


def endpoints(seeded: SeededTenant, key: str) -> list[Endpoint]:
    auth = (("Authorization", f"Bearer {key}"),)
    json_auth = (*auth, ("Content-Type", "application/json"))
    pending, completed, files = rotate(seeded.pending), rotate(seeded.completed), rotate(seeded.batch_files)
    anyone = rotate(seeded.everyone[::7] + seeded.everyone[3::7])  # no job twice in a row of 2,500
    many = [*seeded.completed[:15], seeded.pending[0]]

    def get(name: str, kind: str, path: Callable[[int], str]) -> Endpoint:
        return Endpoint(name, kind, lambda n: Call("GET", path(n), auth))

    def post(name: str, kind: str, path: str, body: Callable[[int], object]) -> Endpoint:
        return Endpoint(name, kind, lambda n: Call("POST", path, json_auth, json.dumps(body(n)).encode()))

    def harf(ids: Callable[[int], list[str]]) -> Callable[[int], object]:
        return lambda n: {"task_ids": ids(n), "wait": False}

    return [
        get("Watson GET /v1/recognitions/{id} (waiting)", "single",
            lambda n: f"/v1/recognitions/{pending(n)}"),
        get("Watson GET /v1/recognitions/{id} (completed)", "single",
            lambda n: f"/v1/recognitions/{completed(n)}"),
        get("TRD GET /trd/v3/job/status/{id}", "single", lambda n: f"/trd/v3/job/status/{pending(n)}"),
        get("Watson GET /v1/recognitions/{id} (fresh read)", "fresh",
            lambda n: f"/v1/recognitions/{anyone(n)}"),
        get("TRD GET /trd/v3/job/status/{id} (fresh read)", "fresh",
            lambda n: f"/trd/v3/job/status/{anyone(n)}"),
        get("TRD GET /trd/v3/job/result/{id}", "single", lambda n: f"/trd/v3/job/result/{completed(n)}"),
        get("TRD batch GET status/audiofile/{id}", "single",
            lambda n: f"/trd/transcription/status/audiofile/{files(n)}"),
        get("TRD batch GET /trd/audiofile/{id}", "single", lambda n: f"/trd/audiofile/{files(n)}"),
        post("Harf POST task_ids [1, pending]", "single", "/api/transcribe_files/",
             harf(lambda n: [pending(n)])),
        post("Harf POST task_ids [1, completed]", "single", "/api/transcribe_files/",
             harf(lambda n: [completed(n)])),
        post("Kashf POST /dataset_info/", "dataset", "/dataset_info/", lambda n: {"dataset": DATASET}),
        get("Watson GET /v1/recognitions (100 newest)", "listing", lambda n: "/v1/recognitions"),
        get("TRD GET /trd/v3/job (page of 100)", "listing", lambda n: "/trd/v3/job?page=1&limit=100"),
        get("TRD GET /trd/v3/query/job (filtered)", "listing",
            lambda n: "/trd/v3/query/job?status=COMPLETED&tag=tag-3&limit=100"),
        post("Harf POST task_ids [16]", "listing", "/api/transcribe_files/", harf(lambda n: many)),
        get(f"TRD batch GET status/batch ({seeded.batch_size} files)", "listing",
            lambda n: f"/trd/transcription/status/batch/{BATCH}"),
    ]  # fmt: skip


HEALTHZ = Endpoint("GET /healthz", "floor", lambda n: Call("GET", "/healthz"))


@contextmanager
def api_server(settings: Settings, processes: int) -> Iterator[int]:
    """The API as deployed, on a free port; yields the port."""
    env = {
        **os.environ,
        "SHENAVA_DATA_DIR": str(settings.data_dir),
        "SHENAVA_SECRET_KEY": settings.secret_key,
        "SHENAVA_API_HOST": HOST,
        "SHENAVA_API_PORT": str(settings.api_port),
        "SHENAVA_RATE_LIMIT_PER_MINUTE": "0",
        "SHENAVA_MAX_QUEUE_DEPTH": "0",
        "SHENAVA_API_PROCESSES": str(processes),
    }
    log = (settings.data_dir / "api.log").open("wb")
    children = [
        subprocess.Popen([sys.executable, "-m", "functions.api"], env=env, stdout=log, stderr=log)
        for _ in range(processes)
    ]
    try:
        yield settings.api_port
    finally:
        for child in children:
            child.terminate()
        for child in children:
            child.wait(timeout=20)
        log.close()


async def wait_ready(port: int, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await http_ok(f"http://{HOST}:{port}/healthz"):
        if time.monotonic() > deadline:
            raise RuntimeError("the API did not start; see api.log in the data directory")
        await asyncio.sleep(0.2)


async def measure(port: int, endpoint: Endpoint, clients: int, seconds: float, budget: int) -> Outcome:
    await load(HOST, port, endpoint.call, clients, WARMUP_S, budget)
    return await load(HOST, port, endpoint.call, clients, seconds, budget)


def verdict(endpoint: Endpoint, outcome: Outcome, share: float, clients: int) -> str:
    """Issue 17's bar: a job's status at least half /healthz's throughput with p99 <= 50 ms at 8
    clients; a listing at least a quarter of it."""
    if outcome.failures(set(endpoint.expected)):
        return "errors"
    if endpoint.kind == "single":
        fast = clients != 8 or outcome.percentile(0.99) <= TARGET_P99_S
        return "meets" if share >= SINGLE_SHARE and fast else "below"
    if endpoint.kind == "listing":
        return "meets" if share >= LISTING_SHARE else "below"
    return ""


@dataclass(frozen=True)
class Measured:
    endpoint: Endpoint
    outcome: Outcome
    floor: float  # /healthz req/s: the mean of the runs just before and just after this one


def report(clients: int, rows: list[Measured]) -> None:
    floors = [row.floor for row in rows]
    print(f"\n{clients} clients; /healthz {min(floors):.0f} to {max(floors):.0f} req/s over the run")
    head = f"{'request':<50} {'kind':<8} {'req/s':>6} {'p50 ms':>7} {'p99 ms':>7} {'healthz':>7} {'share':>6}"
    print(f"  {head}  target")
    for row in rows:
        outcome, share = row.outcome, row.outcome.rate / row.floor
        errors = outcome.failures(set(row.endpoint.expected))
        p50, p99 = outcome.percentile(0.5) * 1000, outcome.percentile(0.99) * 1000
        name, kind = f"{row.endpoint.name:<50}", f"{row.endpoint.kind:<8}"
        print(
            f"  {name} {kind} {outcome.rate:6.0f} {p50:7.1f} {p99:7.1f} {row.floor:7.0f} {share:6.0%}  "
            + verdict(row.endpoint, outcome, share, clients)
            + (f" ({errors} errors: {outcome.statuses})" if errors else "")
        )


async def run_levels(port: int, chosen: list[Endpoint], args: argparse.Namespace) -> None:
    """Each endpoint between two /healthz runs, and compared with their mean: on a shared machine
    the load changes over a run, and a share of the neighbouring floor distorts least."""
    for clients in args.clients:
        before = await measure(port, HEALTHZ, clients, args.seconds, args.budget)
        rows = []
        for endpoint in chosen:
            outcome = await measure(port, endpoint, clients, args.seconds, args.budget)
            after = await measure(port, HEALTHZ, clients, args.seconds, args.budget)
            rows.append(Measured(endpoint, outcome, (before.rate + after.rate) / 2))
            before = after
        report(clients, rows)


async def create_dataset(port: int, key: str) -> None:
    body = json.dumps({"slug": DATASET, "title": "bench", "type": "text"}).encode()
    headers = (("Authorization", f"Bearer {key}"), ("Content-Type", "application/json"))
    outcome = await load(HOST, port, lambda n: Call("POST", "/api/create_dataset/", headers, body), 1, 10, 1)
    if outcome.failures({201}):
        raise RuntimeError(f"creating the Kashf dataset failed: {outcome.statuses}")


async def main_async(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="shenava-api-load-") as tmp:
        stack = EmbeddedStack(free_port_settings(Path(tmp)))
        settings = await stack.start()
        try:
            started = time.perf_counter()
            async with bootstrap(settings) as deps:
                key = await create_key(deps.state, TENANT)
                seeded = await seed(deps.state, TENANT, args.jobs)
            print(f"{args.jobs:,} jobs seeded in {time.perf_counter() - started:.1f} s")
            with api_server(settings, args.api_processes) as port:
                await wait_ready(port)
                await create_dataset(port, key)
                chosen = [e for e in endpoints(seeded, key) if not args.only or args.only in e.name]
                await run_levels(port, chosen, args)
        finally:
            await stack.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.api_load")
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--clients", type=int, nargs="+", default=[8, 64])
    parser.add_argument("--seconds", type=float, default=4.0, help="per endpoint and client count")
    parser.add_argument("--budget", type=int, default=20_000, help="most requests per measurement")
    parser.add_argument("--api-processes", type=int, default=1)
    parser.add_argument("--only", default="", help="measure only endpoints whose name contains this")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
