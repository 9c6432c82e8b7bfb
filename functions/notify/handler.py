"""notify: job lifecycle events → signed webhook deliveries, retried with backoff.

For each event, the notifications the job asked for are computed (Watson: its registered
callback URL and subscribed events). Each one is delivered at most once: the job document
records every attempt, and a delivery already marked delivered is never sent again, so a
redelivered event sends no second webhook. Undelivered ones raise ``RetryableError``: the
runner naks with the notify backoff (hours in all by default). Each notification fails alone: a
URL that cannot even be sent to (malformed, refused by the outbound guard) is one failed
attempt of its own delivery, and the job's other notifications are still sent.
``callback_failure_reason`` says what failed from the first failed attempt on, updated after
every attempt (and when attempts run out); it is cleared once nothing is left failing.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass

import httpx

from events.errors import RetryableError
from events.models import Event, JobCompleted, JobEvent, JobFailed, JobStarted, JobStopped
from events.runner import FunctionSpec
from events.subjects import NOTIFY
from functions.common.bootstrap import Deps
from functions.common.callbacks import CallbackRegistry, tenant_secret
from functions.common.errors import OutboundRefused
from functions.common.jobs import Delivery, DeliveryAttempt, JobDocument, result_key
from functions.common.outbound import Unresolvable, check_url
from functions.common.render_trd import render_job
from functions.common.render_watson import render_results
from functions.common.signing import sign
from functions.common.transcript import Transcript
from functions.notify.metrics import count_attempt

log = logging.getLogger("shenava.notify")

WATSON_EVENTS: dict[str, tuple[str, ...]] = {
    "job.started": ("recognitions.started",),
    "job.completed": ("recognitions.completed", "recognitions.completed_with_results"),
    "job.failed": ("recognitions.failed",),
}


TRD_EVENTS = ("job.completed", "job.failed", "job.stopped")


@dataclass(frozen=True)
class Notification:
    url: str
    event: str  # the dialect's event name
    dialect: str = "watson"  # watson: registered callback, Watson body; trd: the JOB to callback_urls

    @property
    def key(self) -> str:
        return hashlib.sha256(f"{self.event}|{self.url}".encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    error: str
    kind: str = ""  # refused | unreachable | unregistered when no answer came; see ``label``

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def label(self) -> str:
        if self.status_code is not None:
            return "delivered" if self.ok else "http_error"
        return self.kind or "unreachable"


async def handle(event: Event, deps: Deps) -> list[Event]:
    if not isinstance(event, JobStarted | JobCompleted | JobFailed | JobStopped):
        return []
    job = await deps.jobs.find(event.tenant, event.job_id)
    if job is None:
        return []
    undelivered = []
    for notification in watson_notifications(job, event) + trd_notifications(job, event):
        if _delivered(job, notification):
            continue
        outcome = await _deliver(job, notification, deps)
        await _record(job, notification, outcome, deps)
        if not outcome.ok:
            undelivered.append(f"{notification.url}: {outcome.error}")
    if undelivered:
        raise RetryableError("; ".join(undelivered))
    return []


async def on_failure(event: Event, deps: Deps, reason: str) -> list[Event]:
    if not isinstance(event, JobEvent):
        return []

    def give_up(job: JobDocument) -> bool:
        pending = [d for d in job.deliveries.values() if not d.delivered and not d.given_up]
        for delivery in pending:
            delivery.given_up = True
        job.callback_failure_reason = failure_reason(job) or job.callback_failure_reason
        return bool(pending)

    await deps.jobs.change(event.tenant, event.job_id, give_up)
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


def _delivered(job: JobDocument, notification: Notification) -> bool:
    delivery = job.deliveries.get(notification.key)
    return delivery is not None and (delivery.delivered or delivery.given_up)


async def _watson_body(job: JobDocument, notification: Notification, deps: Deps) -> bytes:
    body: dict[str, object] = {
        "id": job.id,
        "event": notification.event,
        "user_token": job.callback.user_token if job.callback else "",
    }
    if notification.event == "recognitions.completed_with_results":
        found = await deps.state.get(result_key(job.tenant, job.id))
        if found:
            body["results"] = render_results(Transcript.model_validate(found[0]), job.options)
    return json.dumps(body, ensure_ascii=False).encode()


async def _body_and_secret(
    job: JobDocument, notification: Notification, deps: Deps
) -> tuple[bytes, str | None] | None:
    """What to send and what to sign it with; None when the Watson callback was unregistered."""
    if notification.dialect == "trd":
        body = json.dumps({"job": render_job(job)}, ensure_ascii=False).encode()
        return body, await tenant_secret(deps.state, deps.secrets, job.tenant)
    callback = await CallbackRegistry(deps.state, deps.secrets).find(job.tenant, notification.url)
    if callback is None:
        return None
    return await _watson_body(job, notification, deps), callback.secret


async def _deliver(job: JobDocument, notification: Notification, deps: Deps) -> Outcome:
    prepared = await _body_and_secret(job, notification, deps)
    if prepared is None:
        return Outcome(None, "the callback URL is no longer registered", "unregistered")
    body, secret = prepared
    headers = {"Content-Type": "application/json"}
    if secret:
        headers["X-Callback-Signature"] = sign(secret, body)
    try:
        check_url(notification.url)  # malformed (httpx would raise InvalidURL) or not http(s)
        response = await deps.http.post(notification.url, content=body, headers=headers)
    except Unresolvable as exc:
        return Outcome(None, str(exc), "unreachable")
    except (OutboundRefused, httpx.InvalidURL) as exc:
        return Outcome(None, str(exc), "refused")
    except httpx.HTTPError as exc:
        return Outcome(None, f"{exc.__class__.__name__}: {exc}".rstrip(": "), "unreachable")
    if 200 <= response.status_code < 300:
        return Outcome(response.status_code, "")
    return Outcome(response.status_code, f"answered HTTP {response.status_code}")


async def _record(job: JobDocument, notification: Notification, outcome: Outcome, deps: Deps) -> None:
    attempt = DeliveryAttempt(at=deps.clock(), status_code=outcome.status_code, error=outcome.error)

    def add(current: JobDocument) -> bool:
        delivery = current.deliveries.setdefault(
            notification.key, Delivery(url=notification.url, event=notification.event)
        )
        delivery.attempts.append(attempt)
        delivery.delivered = delivery.delivered or outcome.ok
        current.callback_failure_reason = failure_reason(current)
        return True

    await deps.jobs.change(job.tenant, job.id, add)
    count_attempt(notification.dialect, outcome.label)
    log.info(
        "notification %s to %s: %s",
        notification.event,
        notification.url,
        "delivered" if outcome.ok else outcome.error,
        extra={"job_id": job.id, "tenant": job.tenant},
    )


def notify_spec(backoff_s: list[float]) -> FunctionSpec:
    return FunctionSpec(NOTIFY, handle, on_failure, backoff_s=backoff_s, max_deliver=len(backoff_s) + 1)
