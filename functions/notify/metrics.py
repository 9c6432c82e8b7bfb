"""The notify worker's own metrics (served with the runner's on the worker's ``/metrics``)."""

from __future__ import annotations

from prometheus_client import Counter

WEBHOOK_ATTEMPTS = Counter(
    "shenava_webhook_attempts_total",
    "Webhook delivery attempts by dialect and outcome (delivered, http_error, refused, "
    "unreachable, unregistered)",
    ["dialect", "outcome"],
)


def count_attempt(dialect: str, outcome: str) -> None:
    WEBHOOK_ATTEMPTS.labels(dialect, outcome).inc()
