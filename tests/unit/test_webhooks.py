"""Standard Webhooks beside each dialect's signature, the retry schedule, 410 Gone, and the delivery
log with replay: notify's handler against a real receiver on loopback, the API over memory stores,
and the receiver's side checked with the ``standardwebhooks`` package a subscriber would use."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from events.errors import RetryableError
from events.models import DeliveryReplayRequested, JobCompleted
from functions.api.app import create_app
from functions.common.apikeys import create_key
from functions.common.bootstrap import Deps
from functions.common.callbacks import set_tenant_secret
from functions.common.delivery_log import AttemptRecord, DeliveryLog, attempt_time
from functions.common.jobs import JobDocument, JobStatus, new_job_id
from functions.common.settings import Settings
from functions.common.webhook_secrets import WebhookSecrets
from functions.notify import handler as notify
from tests.fakes import DirMediaStore, MemoryBus, memory_deps
from tests.receiver import Received, Receiver

SCHEDULE = [5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 50400.0, 72000.0, 86400.0]


@pytest.fixture
async def deps(tmp_path: Path) -> AsyncIterator[Deps]:
    async with memory_deps(tmp_path) as built:
        yield built


async def trd_job(deps: Deps, urls: list[str], tenant: str = "acme") -> JobDocument:
    job = JobDocument(id=new_job_id(), tenant=tenant, source="trd", status=JobStatus.COMPLETED,
                      filename="call.wav", callback_urls=urls)  # fmt: skip
    await deps.jobs.create(job)
    return job


def verified(secret: str, received: Received) -> object:
    """What a receiver does: the standardwebhooks package checks id, timestamp and signature."""
    return Webhook(secret).verify(received.body, received.headers)


def test_the_default_schedule_is_the_specifications() -> None:
    assert Settings().notify_backoff_s == SCHEDULE  # 5 s … 24 h: ten attempts over about three days
    assert sum(SCHEDULE) / 3600 == pytest.approx(75.58, abs=0.01)


async def test_every_notification_carries_standard_webhooks_headers_beside_its_own(
    deps: Deps, receiver: Receiver
) -> None:
    await set_tenant_secret(deps.state, deps.secrets, "acme", "trd-secret")
    job = await trd_job(deps, [receiver.url])
    await notify.handle(JobCompleted.for_job("acme", job.id), deps)

    received = await receiver.next(timeout=5)
    secret = await WebhookSecrets(deps.state, deps.secrets).current("acme")
    assert secret.startswith("whsec_")
    assert verified(secret, received) == received.json  # the package accepts it and parses the body
    assert received.json["job"]["id"] == job.id
    receiver.secret = "trd-secret"
    assert receiver.signed_correctly(received)  # the dialect's own X-Callback-Signature is still there
    stored = (await deps.jobs.get("acme", job.id)).deliveries
    assert [d.webhook_id for d in stored.values()] == [received.headers["webhook-id"]]
    with pytest.raises(WebhookVerificationError):
        Webhook(await WebhookSecrets(deps.state, deps.secrets).rotate("other")).verify(
            received.body, received.headers
        )


async def test_a_rotated_secret_signs_beside_the_old_one_for_a_day(deps: Deps, receiver: Receiver) -> None:
    secrets = WebhookSecrets(deps.state, deps.secrets)
    old = await secrets.current("acme")
    new = await secrets.rotate("acme")
    job = await trd_job(deps, [receiver.url])
    await notify.handle(JobCompleted.for_job("acme", job.id), deps)
    received = await receiver.next(timeout=5)
    assert len(received.headers["webhook-signature"].split(" ")) == 2
    assert verified(old, received) and verified(new, received)  # receivers switch without a gap
    later = deps.clock() + timedelta(hours=25)
    assert await secrets.signing("acme", now=later) == [new]


async def test_failures_wait_for_the_schedule_and_honour_retry_after(deps: Deps, receiver: Receiver) -> None:
    job = await trd_job(deps, [receiver.url])
    await receiver.down()
    with pytest.raises(RetryableError) as first:
        await notify.handle(JobCompleted.for_job("acme", job.id), deps)
    assert first.value.delay_s is not None and 4.5 <= first.value.delay_s <= 5.5
    await receiver.up()
    receiver.status = 503
    with pytest.raises(RetryableError) as second:
        await notify.handle(JobCompleted.for_job("acme", job.id), deps)
    assert second.value.delay_s is not None and 270 <= second.value.delay_s <= 330
    attempts = (await deps.jobs.get("acme", job.id)).deliveries.popitem()[1].attempts
    assert [a.status_code for a in attempts] == [None, 503]
    assert attempts[1].latency_ms is not None and attempts[1].next_retry_at is not None
    assert timedelta(seconds=270) <= attempts[1].next_retry_at - attempts[1].at <= timedelta(seconds=330)


async def test_410_gone_disables_the_url_until_it_is_enabled(deps: Deps, receiver: Receiver) -> None:
    receiver.status = 410
    first = await trd_job(deps, [receiver.url])
    assert await notify.handle(JobCompleted.for_job("acme", first.id), deps) == []  # no retry
    delivery = (await deps.jobs.get("acme", first.id)).deliveries.popitem()[1]
    assert delivery.given_up and "410" in delivery.attempts[0].error
    second = await trd_job(deps, [receiver.url])
    assert await notify.handle(JobCompleted.for_job("acme", second.id), deps) == []
    assert len(receiver.all_notifications) == 1  # nothing more was sent to it
    skipped = (await deps.jobs.get("acme", second.id)).deliveries.popitem()[1]
    assert skipped.given_up and "disabled" in skipped.attempts[0].error


@dataclass
class Api:
    client: httpx.AsyncClient
    deps: Deps
    bus: MemoryBus

    async def replays(self) -> list[DeliveryReplayRequested]:
        return [e for e in self.bus.events if isinstance(e, DeliveryReplayRequested)]


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async with memory_deps(tmp_path) as deps:
        bus = MemoryBus()
        app = create_app(deps.settings, state=deps.state, media=DirMediaStore(tmp_path / "m"), bus=bus,
                         http=deps.http, secrets=deps.secrets)  # fmt: skip
        key = await create_key(deps.state, "acme")
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {key}"}
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://s", headers=headers) as client,
        ):
            yield Api(client, app.state.deps, bus)


async def test_a_delivery_failed_while_the_receiver_was_down_is_listed_replayed_and_arrives_once(
    api: Api, receiver: Receiver
) -> None:
    deps = api.deps
    job = await trd_job(deps, [receiver.url])
    event = JobCompleted.for_job("acme", job.id)
    await receiver.down()
    for _ in range(2):
        with pytest.raises(RetryableError):
            await notify.handle(event, deps)
    await notify.on_failure(event, deps, "gave up")  # the attempts ran out

    failed = (await api.client.get("/shenava/v1/webhooks/deliveries", params={"failed": "true"})).json()
    assert failed["total"] == 2 and {a["url"] for a in failed["attempts"]} == {receiver.url}
    assert failed["attempts"][0]["event"] == "job.completed" and failed["attempts"][0]["error"]
    page = (await api.client.get("/shenava/v1/webhooks/deliveries", params={"limit": 1, "page": 2})).json()
    assert page["total"] == 2 and len(page["attempts"]) == 1
    dead = (await api.client.get("/shenava/v1/webhooks/dead-letters")).json()["dead_letters"]
    assert [(d["job_id"], d["attempts"]) for d in dead] == [(job.id, 2)]

    await receiver.up()
    answer = await api.client.post(f"/shenava/v1/jobs/{job.id}/deliveries/replay")
    assert answer.status_code == 202 and answer.json()["deliveries"] == [dead[0]["delivery_id"]]
    (replay,) = await api.replays()
    await notify.handle(replay, deps)
    await notify.handle(replay, deps)  # the same request again (a redelivered event): not sent twice
    await notify.handle(event, deps)  # nor by the schedule
    received = await receiver.next(timeout=5)
    assert len(receiver.all_notifications) == 1 and received.json["job"]["id"] == job.id
    assert received.headers["webhook-id"] == dead[0]["webhook_id"]  # the receiver can deduplicate

    logged = (await api.client.get(f"/shenava/v1/jobs/{job.id}/deliveries")).json()["deliveries"]
    assert logged[0]["delivered"] and [a["replay"] != "" for a in logged[0]["attempts"]] == [
        False,
        False,
        True,
    ]
    assert (await api.client.get("/shenava/v1/webhooks/dead-letters")).json()["dead_letters"] == []
    assert (await api.client.get(f"/shenava/v1/jobs/{job.id}/deliveries?failed=true")).json()[
        "deliveries"
    ] == []
    nothing = await api.client.post(f"/shenava/v1/jobs/{job.id}/deliveries/replay")
    assert nothing.status_code == 409 and "no failed delivery" in nothing.json()["error"]


async def test_one_delivery_replays_by_id_and_a_disabled_url_must_be_enabled_first(
    api: Api, receiver: Receiver
) -> None:
    deps = api.deps
    receiver.status = 410
    job = await trd_job(deps, [receiver.url])
    await notify.handle(JobCompleted.for_job("acme", job.id), deps)
    (delivery_id,) = (await deps.jobs.get("acme", job.id)).deliveries
    refused = await api.client.post(f"/shenava/v1/jobs/{job.id}/deliveries/{delivery_id}/replay")
    assert refused.status_code == 409 and "enable it first" in refused.json()["error"]
    listed = (await api.client.get("/shenava/v1/webhooks/endpoints/disabled")).json()["endpoints"]
    assert [e["url"] for e in listed] == [receiver.url]
    assert (
        await api.client.post("/shenava/v1/webhooks/endpoints/enable", params={"url": receiver.url})
    ).is_success
    receiver.status = 200
    answer = await api.client.post(f"/shenava/v1/jobs/{job.id}/deliveries/{delivery_id}/replay")
    assert answer.status_code == 202
    await notify.handle((await api.replays())[-1], deps)
    assert [r.json["job"]["id"] for r in receiver.all_notifications] == [job.id, job.id]
    missing = await api.client.post(f"/shenava/v1/jobs/{job.id}/deliveries/nope/replay")
    assert missing.status_code == 404


async def test_the_secret_is_the_tenants_and_rotates_through_the_api(api: Api) -> None:
    first = (await api.client.get("/shenava/v1/webhooks/secret")).json()["secret"]
    assert (
        first.startswith("whsec_")
        and (await api.client.get("/shenava/v1/webhooks/secret")).json()["secret"] == first
    )
    rotated = (await api.client.post("/shenava/v1/webhooks/secret/rotate")).json()
    assert rotated["secret"] != first and rotated["previous_signs_for_s"] == 86400


def attempt_made(at: datetime, n: int) -> AttemptRecord:
    """An attempt logged at ``at``: its id is a UUIDv7 of that millisecond."""
    digits = f"{int(at.timestamp() * 1000):012x}"
    attempt_id = f"{digits[:8]}-{digits[8:12]}-7000-8000-{n:012x}"
    return AttemptRecord(id=attempt_id, job_id="j", delivery_id="d", webhook_id="w", url="http://r/",
                         event="job.completed", dialect="trd", at=at, outcome="delivered")  # fmt: skip


async def test_the_delivery_log_keeps_attempts_for_delivery_log_days(
    deps: Deps, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(notify, "_pruned_at", {})  # this process has not pruned acme's log yet
    book, now = DeliveryLog(deps.state), deps.clock()
    await book.add_attempt("acme", attempt_made(now - timedelta(days=31), 1))
    await book.add_attempt("acme", attempt_made(now - timedelta(days=29), 2))
    await book.add_attempt("other", attempt_made(now - timedelta(days=31), 3))
    assert attempt_time(f"x/{attempt_made(now, 4).id}.ok.json") == now.replace(
        microsecond=now.microsecond // 1000 * 1000
    )

    job = await trd_job(deps, [receiver.url])
    await notify.handle(JobCompleted.for_job("acme", job.id), deps)  # a delivery prunes its tenant's log
    await receiver.next(timeout=5)
    total, kept = await book.attempts("acme", failed_only=False, page=1, limit=10)
    assert total == 2 and {a.job_id for a in kept} == {"j", job.id}
    assert min(a.at for a in kept) == now - timedelta(days=29)
    assert (await book.attempts("other", failed_only=False, page=1, limit=10))[0] == 1  # not its tenant

    await book.add_attempt("acme", attempt_made(now - timedelta(days=40), 5))
    await notify.handle(JobCompleted.for_job("acme", (await trd_job(deps, [receiver.url])).id), deps)
    await receiver.next(timeout=5)
    assert (await book.attempts("acme", False, 1, 10))[0] == 4  # pruned at most hourly: kept for now
    assert await book.prune("acme", now - timedelta(days=30)) == 1
