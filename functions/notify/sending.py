"""One notification, sent once: its body in the dialect's shape, its signatures, its outcome.

Headers of every notification: ``Content-Type: application/json``; the dialect's own
``X-Callback-Signature`` (Watson: the callback's registered secret; TRD: the tenant's callback
secret, when set; OpenAI async jobs: the tenant's callback secret too) and Standard Webhooks'
``webhook-id`` (fixed per delivery), ``webhook-timestamp`` (this attempt's, seconds) and
``webhook-signature`` (the tenant's ``whsec_`` secrets, ``functions.common.webhook_secrets``).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import httpx

from functions.common.bootstrap import Deps
from functions.common.callbacks import CallbackRegistry, tenant_secret
from functions.common.errors import OutboundRefused
from functions.common.jobs import JobDocument, result_key
from functions.common.outbound import Unresolvable, check_url
from functions.common.render_openai import webhook_payload
from functions.common.render_trd import render_job
from functions.common.render_watson import render_results
from functions.common.signing import sign
from functions.common.transcript import Transcript
from functions.common.webhook_secrets import WebhookSecrets, signature_header

MAX_RETRY_AFTER_S = 86400.0  # a receiver's Retry-After is honoured up to a day


@dataclass(frozen=True)
class Notification:
    url: str
    event: str  # the dialect's event name
    dialect: str = "watson"  # watson: registered callback; trd: the JOB; openai: Standard Webhooks payload

    @property
    def key(self) -> str:
        """The delivery's id within its job."""
        return hashlib.sha256(f"{self.event}|{self.url}".encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    error: str
    kind: str = ""  # refused | unreachable | unregistered | disabled when no answer came; see ``label``
    latency_ms: float | None = None
    retry_after_s: float | None = None  # the receiver's Retry-After, when it gave one

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def gone(self) -> bool:
        """410 Gone: the receiver wants no more (Standard Webhooks: disable the endpoint)."""
        return self.status_code == 410

    @property
    def label(self) -> str:
        if self.status_code is not None:
            return "delivered" if self.ok else "http_error"
        return self.kind or "unreachable"


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


async def _openai_body(job: JobDocument, notification: Notification, deps: Deps) -> bytes:
    found = await deps.state.get(result_key(job.tenant, job.id))
    transcript = Transcript.model_validate(found[0]) if found else None
    payload = webhook_payload(job, notification.event, transcript, deps.settings.base_url)
    return json.dumps(payload, ensure_ascii=False).encode()


async def body_and_secret(
    job: JobDocument, notification: Notification, deps: Deps
) -> tuple[bytes, str | None] | None:
    """What to send and the dialect's secret; None when the Watson callback was unregistered."""
    if notification.dialect == "trd":
        body = json.dumps({"job": render_job(job)}, ensure_ascii=False).encode()
        return body, await tenant_secret(deps.state, deps.secrets, job.tenant)
    if notification.dialect == "openai":
        return await _openai_body(job, notification, deps), await tenant_secret(
            deps.state, deps.secrets, job.tenant
        )
    callback = await CallbackRegistry(deps.state, deps.secrets).find(job.tenant, notification.url)
    if callback is None:
        return None
    return await _watson_body(job, notification, deps), callback.secret


def _retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (a number or an HTTP date), capped; None without one."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return min(MAX_RETRY_AFTER_S, max(0.0, seconds))


async def send(job: JobDocument, notification: Notification, webhook_id: str, deps: Deps) -> Outcome:
    """POST the notification once, signed both ways."""
    prepared = await body_and_secret(job, notification, deps)
    if prepared is None:
        return Outcome(None, "the callback URL is no longer registered", "unregistered")
    body, secret = prepared
    timestamp = int(deps.clock().timestamp())
    signing = await WebhookSecrets(deps.state, deps.secrets).signing(job.tenant)
    headers = {
        "Content-Type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(signing, webhook_id, timestamp, body),
    }
    if secret:
        headers["X-Callback-Signature"] = sign(secret, body)
    started = time.perf_counter()
    try:
        check_url(notification.url)  # malformed (httpx would raise InvalidURL) or not http(s)
        response = await deps.http.post(notification.url, content=body, headers=headers)
    except Unresolvable as exc:
        return Outcome(None, str(exc), "unreachable")
    except (OutboundRefused, httpx.InvalidURL) as exc:
        return Outcome(None, str(exc), "refused")
    except httpx.HTTPError as exc:
        return Outcome(None, f"{exc.__class__.__name__}: {exc}".rstrip(": "), "unreachable")
    latency = round((time.perf_counter() - started) * 1000, 1)
    if 200 <= response.status_code < 300:
        return Outcome(response.status_code, "", latency_ms=latency)
    gone = " Gone: the endpoint is disabled" if response.status_code == 410 else ""
    error = f"answered HTTP {response.status_code}{gone}"
    return Outcome(response.status_code, error, latency_ms=latency, retry_after_s=_retry_after(response))
