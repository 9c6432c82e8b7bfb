"""What every runner counts (Prometheus, the process's default registry): events settled per
function and outcome, how long ``handle`` took, and how much waits on each consumer.

Both runners (NATS, SQS) call ``observe`` once per handled event; the NATS runner also refreshes
the pending gauges from its consumers. A worker serves these on ``/metrics``
(``functions.common.observability``).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from events.settle import Ack, Fail, Outcome, Retry

EVENTS = Counter(
    "shenava_events_total",
    "Events settled by a function's runner: handled (acked), retried (nak with a delay) or failed "
    "(the job failed, the message terminated)",
    ["function", "outcome"],
)
HANDLE_SECONDS = Histogram(
    "shenava_event_handle_seconds",
    "Time a function's handle() took for one event, whatever its outcome",
    ["function"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0),
)
PENDING = Gauge(
    "shenava_consumer_pending", "Messages waiting for a consumer (not yet delivered)", ["consumer"]
)
ACK_PENDING = Gauge(
    "shenava_consumer_ack_pending", "Messages delivered to a consumer and not yet acknowledged", ["consumer"]
)


def outcome_label(outcome: Outcome) -> str:
    if isinstance(outcome, Ack):
        return "handled"
    if isinstance(outcome, Retry):
        return "retried"
    assert isinstance(outcome, Fail)
    return "failed"


def observe(function: str, outcome: Outcome, seconds: float) -> None:
    EVENTS.labels(function, outcome_label(outcome)).inc()
    HANDLE_SECONDS.labels(function).observe(seconds)


def set_pending(consumer: str, pending: int, ack_pending: int) -> None:
    PENDING.labels(consumer).set(pending)
    ACK_PENDING.labels(consumer).set(ack_pending)
