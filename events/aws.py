"""The event bus on AWS: SNS fan-out, one SQS queue per function, the NATS runner's semantics.

Topology (``infra/template.yaml``): every event is published once to one SNS topic with its
``type`` as a message attribute; each function's SQS queue subscribes with a filter policy on
``type`` (the subjects of its ``ConsumerSpec``) and raw message delivery, so a queue message body
is exactly ``encode_event(event)``. ingest's queue receives the media bucket's S3 notifications
instead; they are normalised here into ``ObjectCreated`` like MinIO's and SeaweedFS's.

A Lambda invocation gets a batch of SQS records; each is settled on its own and the ones to
redeliver are reported in ``batchItemFailures`` (``ReportBatchItemFailures`` on the mapping):
- ``handle`` → publish the returned events → settled (Lambda deletes the message);
- ``PoisonError`` → ``on_failure`` (the job ends FAILED) → settled, like ``term()``;
- any other error, or the invocation's deadline → reported failed, its visibility timeout set
  to the backoff delay so SQS redelivers it then (the ``nak(delay)`` of the NATS runner);
- on the last allowed receive (ApproximateReceiveCount = max_deliver) that error → ``on_failure``;
- a receive beyond max_deliver means the previous one died (out of memory, killed): ``on_failure``
  at once, like the MaxDeliver advisory. The queues' ``maxReceiveCount`` is max_deliver + 1 so
  that receive exists; only a message whose ``on_failure`` itself keeps failing (the state
  bucket unreachable) reaches the dead-letter queue, where an alarm calls an operator.
A body that is not a valid event is logged and dropped. Deliveries are at least once and SNS has
no publisher dedupe: the handlers are idempotent, which is what makes redelivery safe.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Generic, Protocol

from pydantic import BaseModel, ConfigDict, Field

from events.errors import RetryableError
from events.metrics import observe
from events.models import Event, encode_event, parse_event
from events.runner import D, FunctionSpec
from events.s3_records import from_aws
from events.settle import Ack, Fail, Retry, backoff, log_context, log_outcome, settle

log = logging.getLogger("shenava.aws")

# Seconds kept back from the Lambda deadline to settle the record in hand (on_failure, report).
DEADLINE_MARGIN_S = 10.0
MAX_VISIBILITY_S = 12 * 3600  # SQS's limit for a message's visibility timeout
INTERRUPTED = "processing was interrupted too many times"

SecondsLeft = Callable[[], float]


class DeadlineExceeded(RetryableError):
    """The record did not finish before the invocation's time limit."""


# --- wire models (lenient: the shapes Lambda and SNS hand us) ---------------------------------


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)


class SqsAttributes(_Wire):
    approximate_receive_count: int = Field(default=1, alias="ApproximateReceiveCount")


class SqsRecord(_Wire):
    message_id: str = Field(alias="messageId")
    receipt_handle: str = Field(default="", alias="receiptHandle")
    body: str = ""
    attributes: SqsAttributes = Field(default_factory=SqsAttributes)
    event_source_arn: str = Field(default="", alias="eventSourceARN")


class SqsBatch(_Wire):
    records: list[SqsRecord] = Field(default_factory=list, alias="Records")


def events_in_body(body: str) -> list[Event]:
    """The events one queue message carries: a raw event (SNS raw delivery), an SNS envelope
    around one, or an S3 notification (none for its test event). Raises ``ValueError``."""
    data = json.loads(body)
    if not isinstance(data, dict):
        raise ValueError("a queue message body must be a JSON object")
    if data.get("Type") == "Notification" and isinstance(data.get("Message"), str):
        return events_in_body(data["Message"])
    if "Records" in data or data.get("Event") == "s3:TestEvent":
        return list(from_aws(data))
    return [parse_event(body)]


# --- the adapters a runner talks to ---------------------------------------------------------


class EventPublisher(Protocol):
    async def publish(self, event: Event) -> None: ...


class RedeliveryDelay(Protocol):
    async def delay(self, record: SqsRecord, seconds: float) -> None:
        """Make a failed record visible again only after ``seconds``."""
        ...


class SnsPublisher:
    """Publishes events to the topic; the ``type`` attribute drives the queues' filter policies."""

    def __init__(self, client: Any, topic_arn: str) -> None:
        self._sns = client
        self._topic_arn = topic_arn

    async def publish(self, event: Event) -> None:
        await self._sns.publish(
            TopicArn=self._topic_arn,
            Message=encode_event(event).decode(),
            MessageAttributes={
                "type": {"DataType": "String", "StringValue": event.type},
                "id": {"DataType": "String", "StringValue": event.id},
            },
        )


class SqsRedeliveryDelay:
    """Sets a failed message's visibility timeout; its queue URL comes from the record's ARN."""

    def __init__(self, client: Any) -> None:
        self._sqs = client
        self._urls: dict[str, str] = {}

    async def delay(self, record: SqsRecord, seconds: float) -> None:
        url = await self._queue_url(record.event_source_arn)
        timeout = max(0, min(round(seconds), MAX_VISIBILITY_S))
        await self._sqs.change_message_visibility(
            QueueUrl=url, ReceiptHandle=record.receipt_handle, VisibilityTimeout=timeout
        )

    async def _queue_url(self, arn: str) -> str:
        if arn not in self._urls:
            # arn:<partition>:sqs:<region>:<account>:<queue name>
            account, name = arn.split(":")[4:6]
            found = await self._sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)
            self._urls[arn] = str(found["QueueUrl"])
        return self._urls[arn]


# --- the runner ------------------------------------------------------------------------------


class SqsBatchRunner(Generic[D]):
    """Runs one function's ``FunctionSpec`` over SQS batches (see the module docstring)."""

    def __init__(
        self,
        spec: FunctionSpec[D],
        deps: D,
        publisher: EventPublisher,
        redelivery: RedeliveryDelay | None = None,
    ) -> None:
        self.spec = spec
        self.deps = deps
        self.publisher = publisher
        self.redelivery = redelivery
        settings = deps.settings
        self.backoff: Sequence[float] = list(spec.backoff_s or settings.retry_backoff_s)
        self.max_deliver = spec.max_deliver or settings.max_deliver

    async def process(
        self, batch: Mapping[str, Any], seconds_left: SecondsLeft | None = None
    ) -> dict[str, list[dict[str, str]]]:
        """Settle every record of a Lambda SQS event; report those SQS must deliver again."""
        failed = []
        for record in SqsBatch.model_validate(batch).records:
            if not await self.process_record(record, seconds_left):
                failed.append({"itemIdentifier": record.message_id})
        return {"batchItemFailures": failed}

    async def process_record(self, record: SqsRecord, seconds_left: SecondsLeft | None = None) -> bool:
        """True when the record is settled; False to have SQS deliver it again."""
        try:
            events = events_in_body(record.body)
        except ValueError as exc:
            log.error("dropping a message that is not a valid event: %s", str(exc)[:300])
            return True
        attempt = record.attributes.approximate_receive_count
        for event in events:
            try:
                delay = await self._settle(event, attempt, _budget(seconds_left))
            except Exception as exc:  # on_failure or publishing failed: try the record again
                context = log_context(self.spec.consumer.durable, event, attempt)
                log.exception("settling %s failed: %r", event.id, exc, extra=context)
                delay = self._backoff(attempt)
            if delay is not None:
                await self._delay(record, delay)
                return False
        return True

    async def _settle(self, event: Event, attempt: int, budget: float | None) -> float | None:
        """Handle one event; None when it is settled, else the delay before the next attempt."""
        context = log_context(self.spec.consumer.durable, event, attempt)
        if attempt > self.max_deliver:
            log.error("receive %d is past the last allowed attempt", attempt, extra=context)
            await self._fail(event, INTERRUPTED)
            return None
        if budget is not None and budget <= 0:
            return self._backoff(attempt)  # no time left to start it: it comes back later
        deadline = asyncio.timeout(budget)
        error: Exception | None = None
        started = time.perf_counter()
        try:
            async with deadline:
                produced = await self.spec.handle(event, self.deps)
        except Exception as exc:
            late = DeadlineExceeded("the function ran out of time before finishing this event")
            error, produced = (late if deadline.expired() else exc), []
        outcome = settle(error, attempt, self.max_deliver, self.backoff)
        observe(self.spec.consumer.durable, outcome, time.perf_counter() - started)
        log_outcome(log, outcome, error, context)
        if isinstance(outcome, Retry):
            return outcome.delay_s
        if isinstance(outcome, Fail):
            await self._fail(event, outcome.reason)
        elif isinstance(outcome, Ack):
            await self._publish(produced)
        return None

    def _backoff(self, attempt: int) -> float:
        return backoff(attempt, self.backoff)

    async def _delay(self, record: SqsRecord, seconds: float) -> None:
        if self.redelivery is None:
            return
        try:
            await self.redelivery.delay(record, seconds)
        except Exception as exc:  # the queue's own visibility timeout still brings it back
            log.warning("cannot delay the redelivery of %s: %r", record.message_id, exc)

    async def _fail(self, event: Event, reason: str) -> None:
        await self._publish(await self.spec.on_failure(event, self.deps, reason))

    async def _publish(self, produced: list[Event]) -> None:
        for new_event in produced:
            await self.publisher.publish(new_event)


def _budget(seconds_left: SecondsLeft | None) -> float | None:
    return None if seconds_left is None else seconds_left() - DEADLINE_MARGIN_S
