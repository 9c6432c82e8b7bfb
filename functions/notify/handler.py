"""notify: job lifecycle events → signed webhook deliveries, retried on Standard Webhooks' schedule.

For each event, the notifications the job asked for are computed: Watson (its registered
callback URL and subscribed events), TRD (the JOB to every ``callback_urls``), and async OpenAI
jobs (a Standard Webhooks payload to its ``callback_url``). Each one is a *delivery*, sent by
``sending.send`` with the dialect's signature and Standard Webhooks' ``webhook-id`` (fixed per
delivery: receivers deduplicate on it), ``webhook-timestamp`` and ``webhook-signature``.

Every delivery is delivered at most once by the schedule: the job document records every
attempt, and a delivery already delivered (or given up) is never sent again, so a redelivered
event sends no second webhook. The one gap HTTP leaves: a worker killed between the receiver's
answer and that record sends the delivery again when the event is redelivered — with the same
``webhook-id``, which is what Standard Webhooks asks receivers to deduplicate on. The record is
written first, before the log, so the gap is one conditional write long.

Undelivered ones raise ``RetryableError`` with the next delay of ``notify_backoff_s`` (Standard
Webhooks' example schedule over about three days, with ±10 % jitter, longer when the receiver
asks with ``Retry-After``); when the attempts run out the runner
calls ``on_failure``, which gives them up as dead letters. A ``410 Gone`` answer gives the
delivery up at once and disables the URL for the tenant (``delivery_log``): nothing more is sent
to it until it is enabled again. Each notification fails alone: a URL that cannot even be sent to
is one failed attempt of its own delivery, and the job's other notifications are still sent.

Besides the job document, every attempt is written to the tenant's delivery log, and dead letters
to its own list, for the API's views. A ``DeliveryReplayRequested`` event sends the deliveries it
names once more (a new attempt, same ``webhook-id``), once per replay id however often the event
arrives. ``callback_failure_reason`` says what failed from the first failed attempt on; it is
cleared once nothing is left failing.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from datetime import timedelta

from events.errors import RetryableError
from events.models import (
    DeliveryReplayRequested,
    Event,
    JobCompleted,
    JobEvent,
    JobFailed,
    JobStarted,
    JobStopped,
)
from events.runner import FunctionSpec
from events.subjects import NOTIFY
from functions.common.bootstrap import Deps
from functions.common.delivery_log import (
    AttemptRecord,
    DeadLetter,
    DeliveryLog,
    new_attempt_id,
    webhook_id_of,
)
from functions.common.jobs import Delivery, DeliveryAttempt, JobDocument
from functions.notify.metrics import count_attempt
from functions.notify.sending import Notification, Outcome, send

log = logging.getLogger("shenava.notify")

WATSON_EVENTS: dict[str, tuple[str, ...]] = {
    "job.started": ("recognitions.started",),
    "job.completed": ("recognitions.completed", "recognitions.completed_with_results"),
    "job.failed": ("recognitions.failed",),
}
TRD_EVENTS = ("job.completed", "job.failed", "job.stopped")
OPENAI_EVENTS = {"job.completed": "audio.job.completed", "job.failed": "audio.job.failed",
                 "job.stopped": "audio.job.cancelled"}  # fmt: skip
JITTER = 0.1
PRUNE_EVERY_S = 3600.0  # a tenant's delivery log is pruned at most this often by one process
_pruned_at: dict[str, float] = {}  # tenant → monotonic time (a rate limit only; no state)


@dataclass(frozen=True)
class Attempted:
    outcome: Outcome
    retry_in_s: float | None  # when the schedule tries again; None: it does not


async def handle(event: Event, deps: Deps) -> list[Event]:
    if isinstance(event, DeliveryReplayRequested):
        await replay(event, deps)
        return []
    if not isinstance(event, JobStarted | JobCompleted | JobFailed | JobStopped):
        return []
    job = await deps.jobs.find(event.tenant, event.job_id)
    if job is None:
        return []
    undelivered, delays = [], []
    for notification in notifications(job, event):
        if _settled(job, notification):
            continue
        attempted = await attempt(job, notification, deps)
        if attempted.retry_in_s is not None:
            delays.append(attempted.retry_in_s)
        if not attempted.outcome.ok and not _final(attempted.outcome):
            undelivered.append(f"{notification.url}: {attempted.outcome.error}")
    if undelivered:
        raise RetryableError("; ".join(undelivered), delay_s=min(delays) if delays else None)
    return []


def notifications(job: JobDocument, event: JobEvent) -> list[Notification]:
    return watson_notifications(job, event) + trd_notifications(job, event) + openai_notifications(job, event)


def watson_notifications(job: JobDocument, event: JobEvent) -> list[Notification]:
    if job.callback is None:
        return []
    wanted = set(job.callback.events)
    return [
        Notification(job.callback.url, name) for name in WATSON_EVENTS.get(event.type, ()) if name in wanted
    ]


def trd_notifications(job: JobDocument, event: JobEvent) -> list[Notification]:
    if event.type not in TRD_EVENTS:
        return []
    return [Notification(url, event.type, dialect="trd") for url in job.callback_urls]


def openai_notifications(job: JobDocument, event: JobEvent) -> list[Notification]:
    if job.openai is None or not job.openai.callback_url or event.type not in OPENAI_EVENTS:
        return []
    return [Notification(job.openai.callback_url, OPENAI_EVENTS[event.type], dialect="openai")]


def _settled(job: JobDocument, notification: Notification) -> bool:
    delivery = job.deliveries.get(notification.key)
    return delivery is not None and (delivery.delivered or delivery.given_up)


def _final(outcome: Outcome) -> bool:
    """An outcome no retry can change: the receiver said 410 Gone, or its URL is disabled."""
    return outcome.gone or outcome.kind == "disabled"


def next_delay(deps: Deps, scheduled: int, outcome: Outcome) -> float | None:
    """The delay after scheduled attempt ``scheduled`` (from 1) failed; None after the last."""
    backoff = deps.settings.notify_backoff_s
    if outcome.ok or _final(outcome) or scheduled > len(backoff):
        return None
    delay = backoff[scheduled - 1] * random.uniform(1 - JITTER, 1 + JITTER)
    return max(delay, outcome.retry_after_s or 0.0)


async def attempt(job: JobDocument, notification: Notification, deps: Deps, replay: str = "") -> Attempted:
    """Send one notification and record it (on the job, in the log, as a dead letter if final)."""
    webhook_id = webhook_id_of(job.id, notification.key)
    book = DeliveryLog(deps.state)
    disabled = await book.disabled(job.tenant, notification.url)
    if disabled is not None:
        why = f"the URL is disabled since {disabled.disabled_at.isoformat()}: {disabled.reason}"
        outcome = Outcome(None, why, "disabled")
    else:
        outcome = await send(job, notification, webhook_id, deps)
    known = job.deliveries.get(notification.key)
    scheduled = sum(1 for a in known.attempts if not a.replay) + 1 if known else 1
    delay = None if replay else next_delay(deps, scheduled, outcome)
    record = AttemptRecord(
        id=new_attempt_id(), job_id=job.id, delivery_id=notification.key, webhook_id=webhook_id,
        url=notification.url, event=notification.event, dialect=notification.dialect, at=deps.clock(),
        status_code=outcome.status_code, latency_ms=outcome.latency_ms, error=outcome.error,
        outcome=outcome.label, replay=replay,
    )  # fmt: skip
    if delay is not None:
        record.next_retry_at = record.at + timedelta(seconds=delay)
    # The job document first: it is what stops a redelivered event from sending again, and a
    # worker killed after the receiver's 2xx and before this write sends the delivery twice
    # (same webhook-id). The log, its pruning and the dead letters are views: after it.
    updated = await _record(job, notification, record, outcome, deps)
    await book.add_attempt(job.tenant, record)
    await _follow_up(book, job, notification, record, outcome, updated)
    await _prune_now_and_then(book, job.tenant, deps)
    return Attempted(outcome, delay)


async def _prune_now_and_then(book: DeliveryLog, tenant: str, deps: Deps) -> None:
    """Attempts older than ``delivery_log_days`` leave the tenant's log (at most hourly)."""
    days = deps.settings.delivery_log_days
    now = time.monotonic()
    if days <= 0 or now - _pruned_at.get(tenant, -PRUNE_EVERY_S) < PRUNE_EVERY_S:
        return
    _pruned_at[tenant] = now
    try:
        removed = await book.prune(tenant, deps.clock() - timedelta(days=days))
    except Exception:  # the delivery matters more than the log's tidiness: next time
        log.exception("pruning the delivery log failed", extra={"tenant": tenant})
        _pruned_at.pop(tenant, None)
        return
    if removed:
        log.info("delivery log pruned", extra={"tenant": tenant, "removed": removed})


async def _follow_up(
    book: DeliveryLog, job: JobDocument, notification: Notification, record: AttemptRecord,
    outcome: Outcome, updated: JobDocument | None,
) -> None:  # fmt: skip
    """410 Gone disables the URL; a final failure is a dead letter; a delivered replay is none."""
    if outcome.gone:
        await book.disable(job.tenant, notification.url, f"it answered 410 Gone at {record.at.isoformat()}")
    delivery = updated.deliveries.get(notification.key) if updated else None
    if delivery is None:
        return
    if delivery.delivered:
        await book.remove_dead_letter(job.tenant, job.id, notification.key)
    elif _final(outcome):
        await book.add_dead_letter(job.tenant, dead_letter(job.id, notification.key, delivery))


def dead_letter(job_id: str, key: str, delivery: Delivery) -> DeadLetter:
    last = delivery.attempts[-1]
    return DeadLetter(
        job_id=job_id, delivery_id=key, webhook_id=delivery.webhook_id or webhook_id_of(job_id, key),
        url=delivery.url, event=delivery.event, dialect=delivery.dialect, attempts=len(delivery.attempts),
        last_error=last.error, given_up_at=last.at,
    )  # fmt: skip


async def _record(
    job: JobDocument, notification: Notification, record: AttemptRecord, outcome: Outcome, deps: Deps
) -> JobDocument | None:
    attempt = DeliveryAttempt(
        at=record.at, status_code=outcome.status_code, error=outcome.error, latency_ms=outcome.latency_ms,
        next_retry_at=record.next_retry_at, replay=record.replay,
    )  # fmt: skip

    def add(current: JobDocument) -> bool:
        delivery = current.deliveries.setdefault(
            notification.key, Delivery(url=notification.url, event=notification.event)
        )
        delivery.webhook_id, delivery.dialect = record.webhook_id, notification.dialect
        delivery.attempts.append(attempt)
        delivery.delivered = delivery.delivered or outcome.ok
        delivery.given_up = delivery.given_up or (_final(outcome) and not delivery.delivered)
        if record.replay:
            delivery.replays.append(record.replay)
        current.callback_failure_reason = failure_reason(current)
        return True

    updated = await deps.jobs.change(job.tenant, job.id, add)
    count_attempt(notification.dialect, outcome.label)
    log.info(
        "notification %s to %s: %s", notification.event, notification.url,
        "delivered" if outcome.ok else outcome.error, extra={"job_id": job.id, "tenant": job.tenant},
    )  # fmt: skip
    return updated


async def replay(event: DeliveryReplayRequested, deps: Deps) -> None:
    """Each named delivery once more, unless this replay already sent it (a redelivered event)."""
    job = await deps.jobs.find(event.tenant, event.job_id)
    if job is None:
        return
    for key in event.delivery_ids:
        delivery = job.deliveries.get(key)
        if (
            delivery is None
            or event.replay_id in delivery.replays
            or (event.failed_only and delivery.delivered)
        ):
            continue
        notification = Notification(
            delivery.url, delivery.event, delivery.dialect or dialect_of(job, delivery)
        )
        await attempt(job, notification, deps, replay=event.replay_id)


def dialect_of(job: JobDocument, delivery: Delivery) -> str:
    """Whose delivery it is, for one recorded before deliveries named their dialect."""
    if job.callback is not None and delivery.url == job.callback.url and delivery.event.startswith("recog"):
        return "watson"
    return "openai" if delivery.event.startswith("audio.") else "trd"


async def on_failure(event: Event, deps: Deps, reason: str) -> list[Event]:
    """The attempts ran out: every delivery still pending is given up, as a dead letter."""
    if not isinstance(event, JobEvent) or isinstance(event, DeliveryReplayRequested):
        return []
    given_up: list[str] = []

    def give_up(job: JobDocument) -> bool:
        pending = [k for k, d in job.deliveries.items() if not d.delivered and not d.given_up and d.attempts]
        for key in pending:
            job.deliveries[key].given_up = True
        given_up[:] = pending
        job.callback_failure_reason = failure_reason(job) or job.callback_failure_reason
        return bool(pending)

    job = await deps.jobs.change(event.tenant, event.job_id, give_up)
    if job is not None:
        book = DeliveryLog(deps.state)
        for key in given_up:
            await book.add_dead_letter(job.tenant, dead_letter(job.id, key, job.deliveries[key]))
    return []


def failure_reason(job: JobDocument) -> str:
    """What a user reads about failed notifications: the most recently failed one, or ""."""
    failing = [d for d in job.deliveries.values() if not d.delivered and d.attempts]
    if not failing:
        return ""
    latest = max(failing, key=lambda d: d.attempts[-1].at)
    count = len(latest.attempts)
    what = f"failed after {count} attempts" if latest.given_up else f"failed (attempt {count}, retrying)"
    return f"the {latest.event} notification to {latest.url} {what}: {latest.attempts[-1].error}"


def notify_spec(backoff_s: list[float]) -> FunctionSpec[Deps]:
    return FunctionSpec(NOTIFY, handle, on_failure, backoff_s=backoff_s, max_deliver=len(backoff_s) + 1)
