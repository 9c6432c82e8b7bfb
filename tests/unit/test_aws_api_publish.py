"""The API on AWS hands Kashf's dataset requests to train through the SNS topic (moto's server).

Without NATS the API publishes to ``events_topic_arn``; the template's filter policies route a
request to train's queue only, and train's answer (``dataset.work.done``) to no queue at all.
"""

from __future__ import annotations

from typing import Any

import pytest

from events.models import DatasetExportRequested, DatasetTrainRequested, DatasetWorkDone, Event, parse_event
from functions.api.app import create_app
from functions.api.kashf_runs import KashfRuns
from functions.common.errors import ServiceUnavailable
from tests.aws_support import AwsWorld, receive


def _publish_from_the_api(world: AwsWorld, *events: Event, via_kashf: bool = True) -> None:
    """Run the API app's lifespan as on Lambda (no NATS) and publish through what it connected."""
    settings = world.settings()

    async def publish() -> None:
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            for event in events:
                if via_kashf:
                    await KashfRuns(app.state.deps).publish(event)  # type: ignore[arg-type]
                else:
                    await app.state.deps.bus.publish(event)

    world.run(publish)


def _queued(world: AwsWorld, function: str, at_least: int = 0) -> list[dict[str, Any]]:
    return receive(world.clients("sqs"), world.topology.queues[function].url, at_least=at_least)


def test_the_api_publishes_a_dataset_request_to_trains_queue_only(world: AwsWorld) -> None:
    request = DatasetTrainRequested.for_run("acme", "news", "run-1")
    export = DatasetExportRequested.for_run("acme", "news", "run-2")

    _publish_from_the_api(world, request, export)

    messages = _queued(world, "train", at_least=2)
    received = sorted((parse_event(str(m["Body"])) for m in messages), key=lambda e: e.id)
    assert received == sorted([request, export], key=lambda e: e.id)
    attributes = [m["MessageAttributes"] for m in messages]  # what the filter policies match
    assert sorted(a["type"]["StringValue"] for a in attributes) == sorted([request.type, export.type])
    for other in ("transcribe", "notify"):  # ingest's queue takes S3 notifications only
        assert _queued(world, other) == [], other


def test_dataset_work_done_reaches_no_queue(world: AwsWorld) -> None:
    answer = DatasetWorkDone.for_run("acme", "news", "run-1", work="dataset.train.requested")
    marker = DatasetTrainRequested.for_run("acme", "news", "run-3")  # published after it: fan-out done

    _publish_from_the_api(world, answer, marker, via_kashf=False)

    assert [parse_event(str(m["Body"])) for m in _queued(world, "train", at_least=1)] == [marker]
    for other in ("transcribe", "notify"):  # ingest's queue takes S3 notifications only
        assert _queued(world, other) == [], other


def test_without_nats_or_a_topic_publishing_is_refused_with_503(world: AwsWorld) -> None:
    settings = world.settings(events_topic_arn="")

    async def publish() -> ServiceUnavailable:
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            with pytest.raises(ServiceUnavailable) as refused:
                await app.state.deps.bus.publish(DatasetTrainRequested.for_run("acme", "news", "run-4"))
            return refused.value

    refusal = world.run(publish)
    assert refusal.status == 503 and "SHENAVA_NATS_URL" in str(refusal)
