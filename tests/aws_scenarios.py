"""What the Lambda adapters must do on AWS, written once and run against two endpoints:
moto's server in-process (tests/unit/test_aws_moto.py) and a LocalStack-compatible endpoint
reached through localstack-client (tests/integration/test_aws_localstack.py).

Each scenario gets an ``AwsWorld`` with the template's topology already built, drives the real
entry objects (``SqsFunction``, ``ApiFunction``) with Lambda-shaped events, and checks the state
bucket and the queues. No Whisper model: transcribe runs a scripted engine.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from events.models import JobQueued, JobStarted, parse_event
from functions.common.apikeys import create_key
from functions.common.bootstrap import bootstrap
from functions.common.jobs import JobDocument, JobStatus, MediaFacts, Stage, job_key, new_job_id
from functions.common.media_store import normalized_key
from functions.common.settings import Settings
from functions.ingest.handler import SPEC as INGEST
from functions.transcribe.handler import SPEC as TRANSCRIBE
from tests.aws_support import (
    AwsWorld,
    FakeContext,
    deliver,
    http_api_event,
    list_keys,
    read_json,
    receive,
    response_json,
)
from tests.fakes import ScriptedEngine
from tests.speech import espeak_wav

# Spaces, "+" and non-ASCII: S3 announces this key query-escaped ("batch+1/caf%C3%A9%2Bx.wav").
DROPPED_KEY = "incoming/batch 1/café+x.wav"


def _types(messages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    events = [parse_event(m["Body"]) for m in messages]
    return sorted((e.type, getattr(e, "job_id", "")) for e in events)


def _job(world: AwsWorld, tenant: str, job_id: str) -> JobDocument:
    s3 = world.clients("s3")
    return JobDocument.model_validate(read_json(s3, world.topology.state_bucket, job_key(tenant, job_id)))


def _only_job_id(world: AwsWorld, tenant: str) -> str:
    keys = list_keys(world.clients("s3"), world.topology.state_bucket, f"tenants/{tenant}/jobs/")
    assert len(keys) == 1, keys
    return keys[0].rsplit("/", 1)[1].removesuffix(".json")


def drop_folder_file_becomes_a_queued_job(world: AwsWorld, tmp: Path) -> None:
    """S3 ObjectCreated (URL-encoded key) → ingest → job document + one job.queued on SNS."""
    s3, sqs, topology = world.clients("s3"), world.clients("sqs"), world.topology
    wav = espeak_wav("hello from the drop folder", "en-us", tmp / "speech.wav")
    s3.put_object(Bucket=topology.media_bucket, Key=DROPPED_KEY, Body=wav.read_bytes())
    ingest = world.sqs_function(INGEST, world.settings(drop_tenant="drop"))

    event, response = deliver(sqs, topology.queues["ingest"], ingest, world.thread, FakeContext())

    assert response == {"batchItemFailures": []}
    records = [json.loads(r["body"]).get("Records", []) for r in event["Records"]]
    announced = [r["s3"]["object"]["key"] for batch in records for r in batch]
    assert announced and all("caf%C3%A9%2Bx.wav" in key for key in announced)  # encoded on the wire
    job = _job(world, "drop", _only_job_id(world, "drop"))
    assert (job.source, job.batch, job.filename) == ("drop", "batch 1", "café+x.wav")
    assert (job.status, job.stage, job.media.key) == (JobStatus.QUEUED, Stage.NORMALIZED, DROPPED_KEY)
    assert job.media.duration > 0.5 and job.media.channels == 1
    assert list_keys(s3, topology.media_bucket, "normalized/") == [normalized_key("drop", job.id)]
    queued = receive(sqs, topology.queues["transcribe"].url, at_least=1)
    assert _types(queued) == [("job.queued", job.id)]
    assert queued[0]["MessageAttributes"]["type"]["StringValue"] == "job.queued"
    assert receive(sqs, topology.queues["notify"].url) == []  # filtered out by its policy
    assert receive(sqs, topology.queues["ingest"].url) == []  # settled and deleted; nothing looped back


def long_media_is_refused_at_ingest(world: AwsWorld, tmp: Path) -> None:
    """Media longer than max_media_seconds ends FAILED with a reason naming the limit."""
    s3, sqs, topology = world.clients("s3"), world.clients("sqs"), world.topology
    wav = espeak_wav("this recording is longer than the limit", "en-us", tmp / "long.wav")
    s3.put_object(Bucket=topology.media_bucket, Key="incoming/b/long.wav", Body=wav.read_bytes())
    ingest = world.sqs_function(INGEST, world.settings(drop_tenant="drop", max_media_seconds=0.5))

    _, response = deliver(sqs, topology.queues["ingest"], ingest, world.thread, FakeContext())

    assert response == {"batchItemFailures": []}
    job = _job(world, "drop", _only_job_id(world, "drop"))
    assert job.status == JobStatus.FAILED
    assert "limit of 0 s" in job.failure_reason and "NATS" in job.failure_reason
    assert _types(receive(sqs, topology.queues["notify"].url, at_least=1)) == [("job.failed", job.id)]
    assert receive(sqs, topology.queues["transcribe"].url) == []


def _transcribe_jobs(world: AwsWorld, settings: Settings, wav: Path) -> tuple[str, str, str]:
    """Jobs a and c queued with their audio; b started, but its normalised audio is gone."""
    ids = new_job_id(), new_job_id(), new_job_id()
    a, b, c = (
        JobDocument(
            id=job_id,
            tenant="acme",
            status=JobStatus.IN_PROGRESS if job_id == ids[1] else JobStatus.QUEUED,
            stage=Stage.NORMALIZED,
            media=MediaFacts(normalized_key=normalized_key("acme", job_id), channels=1, duration=1.0),
        )
        for job_id in ids
    )

    async def create() -> None:
        async with bootstrap(settings) as deps:
            for job in (a, b, c):
                await deps.jobs.create(job)
            for job in (a, c):
                await deps.media.put_file(job.media.normalized_key, wav, "audio/wav")

    world.run(create)
    return ids


def batch_with_one_bad_record_reports_exactly_that_one(world: AwsWorld, tmp: Path) -> None:
    """Three records, one failing: only it is reported; on its last receive its job ends FAILED."""
    sqs, queue = world.clients("sqs"), world.topology.queues["transcribe"]
    # No backoff, so the failed record is visible again at once; two attempts in all.
    settings = world.settings(retry_backoff_s=[0.0], max_deliver=2)
    a, b, c = _transcribe_jobs(world, settings, espeak_wav("hello", "en-us", tmp / "hello.wav"))
    for event in (JobQueued.for_job("acme", a), JobStarted.for_job("acme", b), JobQueued.for_job("acme", c)):
        sqs.send_message(QueueUrl=queue.url, MessageBody=event.model_dump_json())
    engine = ScriptedEngine({0: ["hello there"]})
    transcribe = world.sqs_function(TRANSCRIBE, settings, engine=engine)

    sent, response = deliver(sqs, queue, transcribe, world.thread, FakeContext(), expect=3)

    bad = [r["messageId"] for r in sent["Records"] if parse_event(r["body"]).model_dump().get("job_id") == b]
    assert response == {"batchItemFailures": [{"itemIdentifier": bad[0]}]}
    assert _job(world, "acme", a).status == JobStatus.IN_PROGRESS == _job(world, "acme", c).status

    # Next delivery: a and c run (their job.started came back through SNS), b is on its last receive.
    sent, response = deliver(sqs, queue, transcribe, world.thread, FakeContext(), expect=3)

    assert sorted(r["attributes"]["ApproximateReceiveCount"] for r in sent["Records"]) == ["1", "1", "2"]
    assert response == {"batchItemFailures": []}
    assert _job(world, "acme", a).status == JobStatus.COMPLETED == _job(world, "acme", c).status
    failed = _job(world, "acme", b)
    assert failed.status == JobStatus.FAILED and "gave up after 2 attempts" in failed.failure_reason
    expected = [("job.started", a), ("job.started", c), ("job.completed", a), ("job.completed", c)]
    notified = receive(sqs, world.topology.queues["notify"].url, at_least=5)
    assert _types(notified) == sorted([*expected, ("job.failed", b)])
    assert receive(sqs, queue.url) == [] and receive(sqs, queue.dead_letter_url) == []


def api_answers_a_watson_request(world: AwsWorld, tmp: Path) -> None:
    """API Gateway events → Mangum → the FastAPI app: list, submit (→ S3 → ingest's queue)."""
    settings = world.settings()

    async def new_key() -> str:
        async with bootstrap(settings) as deps:
            return await create_key(deps.state, "acme")

    key = world.run(new_key)
    api = world.api_function(settings)
    auth = {"authorization": f"Bearer {key}"}

    listed = world.thread.call(api, http_api_event("GET", "/v1/recognitions", headers=auth), FakeContext())
    assert listed["statusCode"] == 200 and response_json(listed) == {"recognitions": []}

    refused = world.thread.call(api, http_api_event("GET", "/v1/recognitions"), FakeContext())
    assert refused["statusCode"] == 401 and response_json(refused)["code_description"] == "Unauthorized"

    wav = espeak_wav("hello", "en-us", tmp / "hello.wav").read_bytes()
    headers = {**auth, "content-type": "audio/wav"}
    request = http_api_event("POST", "/v1/recognitions", headers=headers, body=wav)
    created = world.thread.call(api, request, FakeContext())
    assert created["statusCode"] == 201, created
    job = response_json(created)
    # Links use the API Gateway domain the request came through.
    assert job["url"] == f"https://abc123.execute-api.us-east-1.amazonaws.com/v1/recognitions/{job['id']}"
    uploads = list_keys(world.clients("s3"), world.topology.media_bucket, f"uploads/acme/{job['id']}/")
    assert len(uploads) == 1
    notified = receive(world.clients("sqs"), world.topology.queues["ingest"].url, at_least=1)
    keys = [r["s3"]["object"]["key"] for m in notified for r in json.loads(m["Body"]).get("Records", [])]
    assert any(job["id"] in k for k in keys)  # the bucket announced the upload to ingest
