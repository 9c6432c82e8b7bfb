"""The SQS batch runner's semantics over in-memory fakes: the same contract as the NATS runner."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from events.aws import INTERRUPTED, SqsBatchRunner, SqsRecord, events_in_body
from events.errors import PoisonError, RetryableError
from events.models import Event, JobCompleted, JobFailed, JobQueued, JobStarted, ObjectCreated, encode_event
from events.runner import FunctionSpec
from events.subjects import TRANSCRIBE
from functions.common.bootstrap import Deps
from tests.fakes import memory_deps

EVENTS = Path(__file__).resolve().parents[1] / "events"


@dataclass
class Published:
    events: list[Event] = field(default_factory=list)

    async def publish(self, event: Event) -> None:
        self.events.append(event)


@dataclass
class Delays:
    given: dict[str, float] = field(default_factory=dict)

    async def delay(self, record: SqsRecord, seconds: float) -> None:
        self.given[record.message_id] = seconds


@dataclass
class Script:
    """A function whose outcome per job id is scripted; records every call."""

    outcomes: dict[str, BaseException | float] = field(default_factory=dict)  # float: sleep
    handled: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)

    async def handle(self, event: Event, deps: Deps) -> list[Event]:
        assert isinstance(event, JobQueued)
        self.handled.append(event.job_id)
        outcome = self.outcomes.get(event.job_id)
        if isinstance(outcome, BaseException):
            raise outcome
        if outcome is not None:
            await asyncio.sleep(outcome)
        return [JobStarted.for_job(event.tenant, event.job_id)]

    async def on_failure(self, event: Event, deps: Deps, reason: str) -> list[Event]:
        assert isinstance(event, JobQueued)
        self.failed.append((event.job_id, reason))
        return [JobFailed.for_job(event.tenant, event.job_id, reason=reason)]

    def spec(self) -> FunctionSpec:
        return FunctionSpec(TRANSCRIBE, self.handle, self.on_failure, backoff_s=[5.0, 50.0], max_deliver=3)


@pytest.fixture
async def deps(tmp_path: Path) -> AsyncIterator[Deps]:
    async with memory_deps(tmp_path) as built:
        yield built


def record(job_id: str, attempt: int = 1, body: str | None = None) -> dict[str, object]:
    event = JobQueued.for_job("acme", job_id)
    return {
        "messageId": f"m-{job_id}",
        "receiptHandle": f"r-{job_id}",
        "body": body if body is not None else encode_event(event).decode(),
        "attributes": {"ApproximateReceiveCount": str(attempt)},
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:transcribe",
    }


def runner(script: Script, deps: Deps) -> tuple[SqsBatchRunner, Published, Delays]:
    published, delays = Published(), Delays()
    return SqsBatchRunner(script.spec(), deps, published, delays), published, delays


async def test_only_the_failing_record_is_reported_and_delayed_by_the_backoff(deps: Deps) -> None:
    script = Script({"b": RuntimeError("disk on fire")})
    run, published, delays = runner(script, deps)
    response = await run.process({"Records": [record("a"), record("b", attempt=2), record("c")]})
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-b"}]}
    assert [e.job_id for e in published.events if isinstance(e, JobStarted)] == ["a", "c"]
    assert delays.given == {"m-b": 50.0}  # the backoff of the second attempt
    assert script.failed == []


async def test_a_retryable_error_picks_its_own_delay(deps: Deps) -> None:
    script = Script({"a": RetryableError("receiver down", delay_s=7.0)})
    run, _, delays = runner(script, deps)
    response = await run.process({"Records": [record("a")]})
    assert response["batchItemFailures"] == [{"itemIdentifier": "m-a"}] and delays.given == {"m-a": 7.0}


async def test_poison_fails_the_job_and_settles_the_record(deps: Deps) -> None:
    script = Script({"a": PoisonError("not audio")})
    run, published, _ = runner(script, deps)
    assert await run.process({"Records": [record("a")]}) == {"batchItemFailures": []}
    assert script.failed == [("a", "not audio")]
    assert [type(e) for e in published.events] == [JobFailed]


async def test_the_last_allowed_receive_fails_the_job_instead_of_retrying(deps: Deps) -> None:
    script = Script({"a": RuntimeError("still broken")})
    run, published, delays = runner(script, deps)
    assert await run.process({"Records": [record("a", attempt=3)]}) == {"batchItemFailures": []}
    assert script.failed == [("a", "still broken (gave up after 3 attempts)")]
    assert isinstance(published.events[0], JobFailed) and delays.given == {}


async def test_a_receive_past_the_limit_means_the_last_one_died_and_fails_the_job(deps: Deps) -> None:
    script = Script()
    run, published, _ = runner(script, deps)
    assert await run.process({"Records": [record("a", attempt=4)]}) == {"batchItemFailures": []}
    assert script.handled == [] and script.failed == [("a", INTERRUPTED)]
    assert isinstance(published.events[0], JobFailed)


async def test_on_failure_failing_leaves_the_record_for_redelivery(deps: Deps) -> None:
    script = Script({"a": PoisonError("bad")})

    async def broken(event: Event, deps: Deps, reason: str) -> list[Event]:
        raise ConnectionError("state bucket unreachable")

    spec = FunctionSpec(TRANSCRIBE, script.handle, broken, backoff_s=[5.0], max_deliver=3)
    run = SqsBatchRunner(spec, deps, Published(), Delays())
    assert await run.process({"Records": [record("a")]}) == {"batchItemFailures": [{"itemIdentifier": "m-a"}]}


async def test_running_out_of_time_is_a_retry_then_records_not_started_come_back(deps: Deps) -> None:
    script = Script({"a": 30.0})  # would sleep past the deadline
    run, _, delays = runner(script, deps)
    left = iter([10.2, 10.0])  # seconds left when each record starts; 10 s are kept back

    response = await run.process({"Records": [record("a"), record("b")]}, seconds_left=lambda: next(left))
    assert response["batchItemFailures"] == [{"itemIdentifier": "m-a"}, {"itemIdentifier": "m-b"}]
    assert script.handled == ["a"]  # b was never started
    assert set(delays.given) == {"m-a", "m-b"}


async def test_running_out_of_time_on_the_last_attempt_fails_the_job_with_a_clear_reason(deps: Deps) -> None:
    script = Script({"a": 30.0})
    run, _, _ = runner(script, deps)
    await run.process({"Records": [record("a", attempt=3)]}, seconds_left=lambda: 10.1)
    assert script.failed and "ran out of time" in script.failed[0][1]


async def test_a_body_that_is_no_event_is_dropped(deps: Deps) -> None:
    script = Script()
    run, published, _ = runner(script, deps)
    bad = [record("x", body="not json"), record("y", body='{"type": "job.unknown"}'), record("z", body="[]")]
    assert await run.process({"Records": bad}) == {"batchItemFailures": []}
    assert script.handled == [] and published.events == []


def test_bodies_raw_sns_envelope_and_s3_notifications_all_become_events() -> None:
    event = JobCompleted.for_job("acme", "j1")
    raw = encode_event(event).decode()
    envelope = json.dumps({"Type": "Notification", "MessageId": "1", "Message": raw, "TopicArn": "arn:x"})
    assert events_in_body(raw) == [event] and events_in_body(envelope) == [event]

    s3 = (EVENTS / "aws_put.json").read_text()
    created = events_in_body(s3)
    assert all(isinstance(e, ObjectCreated) for e in created)
    assert [e.key for e in created if isinstance(e, ObjectCreated)] == [
        "incoming/b1/call été.wav",
        "incoming/b2/a+b c.wav",
    ]
    assert events_in_body((EVENTS / "aws_test_event.json").read_text()) == []
