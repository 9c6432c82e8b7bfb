"""AWS test support: the template's topology on an S3/SNS/SQS endpoint, and Lambda's side of it.

``create_topology`` builds on any AWS-compatible endpoint (moto's server, LocalStack) what
``infra/template.yaml`` declares: the two buckets, the events topic, one queue per function with
its dead-letter queue and ``maxReceiveCount``, the SNS subscriptions with their filter policies,
and the media bucket's notifications with their prefixes — read from the template, so a test
exercises the routing that gets deployed. ``deliver`` does what Lambda's SQS poller does:
receive a batch, invoke the handler, delete what it did not report as failed.

Lambda handlers own an event loop and make it the thread's current one, so tests call them in
a ``LambdaThread`` of their own rather than beside pytest-asyncio's loop.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from cfnlint.decode import cfn_yaml
from cryptography.fernet import Fernet

from functions.api.app import create_app
from functions.common.lambda_entry import ApiFunction, SpecSource, SqsFunction
from functions.common.settings import Settings

TEMPLATE = Path(__file__).resolve().parents[1] / "infra" / "template.yaml"
FUNCTION_QUEUES = {
    "ingest": "IngestQueue",
    "transcribe": "TranscribeQueue",
    "notify": "NotifyQueue",
    "train": "TrainQueue",
}
LONG_POLL_BUDGET_S = 10.0
T = TypeVar("T")
Clients = Callable[[str], Any]  # service name → a boto3-style client on the endpoint


def load_template() -> dict[str, Any]:
    return dict(cfn_yaml.load(str(TEMPLATE)))


def resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


def get_att_target(value: Any) -> str:
    """``!GetAtt Queue.Arn`` (either spelling) → ``Queue``."""
    target = value["Fn::GetAtt"]
    return str(target[0] if isinstance(target, list) else target.split(".")[0])


@dataclass(frozen=True)
class Queue:
    url: str
    arn: str
    dead_letter_url: str


@dataclass(frozen=True)
class Topology:
    media_bucket: str
    state_bucket: str
    topic_arn: str
    queues: dict[str, Queue]  # by function name


def _queue_arn(sqs: Any, url: str) -> str:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    return str(attributes["QueueArn"])


def _create_queue(sqs: Any, name: str, props: dict[str, Any]) -> Queue:
    dead = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    redrive = {
        "deadLetterTargetArn": _queue_arn(sqs, dead),
        "maxReceiveCount": int(props["RedrivePolicy"]["maxReceiveCount"]),
    }
    attributes = {"VisibilityTimeout": str(props["VisibilityTimeout"]), "RedrivePolicy": json.dumps(redrive)}
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    return Queue(url, _queue_arn(sqs, url), dead)


def _media_notifications(template: dict[str, Any], queues: dict[str, Queue]) -> dict[str, Any]:
    by_logical = {FUNCTION_QUEUES[f]: q for f, q in queues.items()}
    configured = template["Resources"]["MediaBucket"]["Properties"]["NotificationConfiguration"]
    return {
        "QueueConfigurations": [
            {
                "QueueArn": by_logical[get_att_target(entry["Queue"])].arn,
                "Events": [entry["Event"]],
                "Filter": {"Key": {"FilterRules": entry["Filter"]["S3Key"]["Rules"]}},
            }
            for entry in configured["QueueConfigurations"]
        ]
    }


def create_topology(clients: Clients, template: dict[str, Any] | None = None) -> Topology:
    """The template's buckets, topic, queues, subscriptions and notifications, uniquely named."""
    template = template or load_template()
    run = uuid.uuid4().hex[:8]
    s3, sns, sqs = clients("s3"), clients("sns"), clients("sqs")
    media, state = f"media-{run}", f"state-{run}"
    for bucket in (media, state):
        s3.create_bucket(Bucket=bucket)
    topic = sns.create_topic(Name=f"events-{run}")["TopicArn"]
    declared = template["Resources"]
    queues = {
        function: _create_queue(sqs, f"{function}-{run}", declared[logical]["Properties"])
        for function, logical in FUNCTION_QUEUES.items()
    }
    by_logical = {FUNCTION_QUEUES[f]: q for f, q in queues.items()}
    for sub in resources(template, "AWS::SNS::Subscription").values():
        props = sub["Properties"]
        if props.get("Protocol") != "sqs":
            continue
        attributes = {
            "RawMessageDelivery": str(props["RawMessageDelivery"]).lower(),
            "FilterPolicy": json.dumps(props["FilterPolicy"]),
        }
        queue = by_logical[get_att_target(props["Endpoint"])]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue.arn, Attributes=attributes)
    s3.put_bucket_notification_configuration(
        Bucket=media, NotificationConfiguration=_media_notifications(template, queues)
    )
    return Topology(media, state, topic, queues)


def aws_settings(topology: Topology, endpoint: str, data_dir: Path, **overrides: Any) -> Settings:
    """Settings of a Lambda function on this endpoint (what the template's environment gives)."""
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "secret_key": Fernet.generate_key().decode(),
        "s3_endpoint_url": endpoint,
        "aws_endpoint_url": endpoint,
        "s3_access_key": "testing",
        "s3_secret_key": "testing",
        "s3_region": "us-east-1",
        "nats_url": "",
        "media_bucket": topology.media_bucket,
        "state_bucket": topology.state_bucket,
        "events_topic_arn": topology.topic_arn,
        **overrides,
    }
    return Settings(**values)


def read_json(s3: Any, bucket: str, key: str) -> Any:
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def list_keys(s3: Any, bucket: str, prefix: str = "") -> list[str]:
    found = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return sorted(item["Key"] for item in found)


# --- Lambda's side ----------------------------------------------------------------------------


class FakeContext:
    """The part of Lambda's context object the handlers read."""

    def __init__(self, seconds_left: float = 300.0) -> None:
        self.seconds_left = seconds_left

    def get_remaining_time_in_millis(self) -> int:
        return int(self.seconds_left * 1000)


class LambdaThread:
    """One thread standing for the Lambda runtime: handlers run there, one call at a time."""

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lambda")

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        return self._executor.submit(fn, *args).result()

    def close(self) -> None:
        self._executor.shutdown(wait=True)


def sqs_event(messages: list[dict[str, Any]], queue: Queue, region: str = "us-east-1") -> dict[str, Any]:
    """Lambda's SQS event for messages from ``ReceiveMessage`` (attributes as strings, like AWS)."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": {k: str(v) for k, v in m.get("Attributes", {}).items()},
                "messageAttributes": m.get("MessageAttributes", {}),
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue.arn,
                "awsRegion": region,
            }
            for m in messages
        ]
    }


def receive(sqs: Any, url: str, at_least: int = 0, wanted: int = 10) -> list[dict[str, Any]]:
    """The messages visible at the queue ``url`` (up to ``wanted``). While fewer than
    ``at_least`` arrived, SQS long-polls for more (fan-out is asynchronous on LocalStack; moto
    delivers at once), up to LONG_POLL_BUDGET_S in all."""
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + LONG_POLL_BUDGET_S
    while len(found) < wanted:
        short = len(found) < at_least and time.monotonic() < deadline
        batch = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=min(10, wanted - len(found)),
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
            WaitTimeSeconds=1 if short else 0,
        ).get("Messages", [])
        if not batch and not short:
            break
        found.extend(batch)
    return found


def deliver(
    sqs: Any,
    queue: Queue,
    handler: Callable[[dict[str, Any], Any], dict[str, Any]],
    thread: LambdaThread,
    context: Any = None,
    expect: int = 1,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Lambda's SQS poller, once: receive (at least ``expect`` messages), invoke, delete the
    settled. → (the Lambda event, the handler's response)."""
    messages = receive(sqs, queue.url, at_least=expect)
    event = sqs_event(messages, queue)
    response = thread.call(handler, event, context)
    failed = {item["itemIdentifier"] for item in response["batchItemFailures"]}
    for message in messages:
        if message["MessageId"] not in failed:
            sqs.delete_message(QueueUrl=queue.url, ReceiptHandle=message["ReceiptHandle"])
    return event, response


def bodies(messages: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for message in messages:
        yield json.loads(message["Body"])


def http_api_event(
    method: str,
    path: str,
    *,
    query: str = "",
    headers: dict[str, str] | None = None,
    body: bytes = b"",
) -> dict[str, Any]:
    """An API Gateway HTTP API (payload format 2.0) request, as the function receives it."""
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": {"host": "abc123.execute-api.us-east-1.amazonaws.com", **(headers or {})},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "abc123",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.9",
                "userAgent": "tests",
            },
            "requestId": uuid.uuid4().hex,
            "routeKey": "$default",
            "stage": "$default",
        },
        "body": base64.b64encode(body).decode(),
        "isBase64Encoded": True,
    }


def response_json(response: dict[str, Any]) -> Any:
    body = response.get("body", "")
    raw = base64.b64decode(body) if response.get("isBase64Encoded") else body.encode()
    return json.loads(raw)


# --- a world: an endpoint, its topology, and Lambda functions on it ---------------------------


@dataclass
class AwsWorld:
    """One test's AWS: clients on an endpoint, the template's topology, a Lambda thread."""

    endpoint: str
    clients: Clients
    topology: Topology
    thread: LambdaThread
    data_dir: Path
    opened: list[SqsFunction | ApiFunction] = field(default_factory=list)

    def settings(self, **overrides: Any) -> Settings:
        return aws_settings(self.topology, self.endpoint, self.data_dir, **overrides)

    def sqs_function(self, spec: SpecSource, settings: Settings, **deps: Any) -> SqsFunction:
        function = SqsFunction(spec, settings=settings, **deps)
        self.opened.append(function)
        return function

    def api_function(self, settings: Settings | None = None) -> ApiFunction:
        function = ApiFunction(create_app, settings=settings)
        self.opened.append(function)
        return function

    def run(self, work: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Run async set-up code (bootstrap on the endpoint) on the Lambda thread."""
        return self.thread.call(asyncio.run, work())

    def close(self) -> None:
        for function in self.opened:
            self.thread.call(function.runtime.close)
        self.thread.close()
