"""Webhooks on the real stack: a TRD callback that failed while its receiver was down exhausts its
retries (the test pipeline's short schedule), is listed in the delivery log and as a dead letter,
is replayed with ``shenava webhooks replay`` once the receiver is back, and then arrives once,
verifiable with the ``standardwebhooks`` package and carrying the webhook-id of its failed attempts."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from tests.integration.pipeline import Pipeline
from tests.integration.test_cli_e2e import shenava
from tests.receiver import Receiver
from tests.speech import espeak_wav

pytestmark = [pytest.mark.e2e, pytest.mark.asr]


async def dead_letter(api: httpx.AsyncClient, job_id: str, timeout_s: float) -> dict[str, Any]:
    """The job's dead letter, once notify gave the delivery up (the schedule's ~23 s here)."""

    async def given_up() -> dict[str, Any]:
        while True:
            letters = (await api.get("/shenava/v1/webhooks/dead-letters")).json()["dead_letters"]
            found = [d for d in letters if d["job_id"] == job_id]
            if found:
                return found[0]  # type: ignore[no-any-return]
            await asyncio.sleep(0.5)  # polling the API as a user would; the event is notify's

    return await asyncio.wait_for(given_up(), timeout_s)


async def test_a_failed_delivery_is_listed_replayed_and_arrives_once(
    pipeline: Pipeline, receiver: Receiver, tmp_path: Path
) -> None:
    audio = espeak_wav("The delivery log keeps every attempt.", "en-us", tmp_path / "log.wav")
    await receiver.down()
    async with httpx.AsyncClient(base_url=pipeline.api_url, headers=pipeline.auth(), timeout=120) as api:
        created = await api.post(
            "/trd/v3/job/create",
            files={"upload_file": (audio.name, audio.read_bytes(), "audio/wav")},
            data={"callback_urls": receiver.url, "config": '{"recognition": {"language": "en"}}'},
        )
        job_id = created.json()["job"]["id"]
        letter = await dead_letter(api, job_id, timeout_s=120)
        attempts = len(pipeline.settings.notify_backoff_s) + 1
        assert letter["attempts"] == attempts and letter["url"] == receiver.url

        failed = (
            await api.get("/shenava/v1/webhooks/deliveries", params={"failed": "true", "limit": 500})
        ).json()
        mine = [a for a in failed["attempts"] if a["job_id"] == job_id]
        assert len(mine) == attempts and all(a["status_code"] is None and a["error"] for a in mine)
        assert mine[-1]["next_retry_at"] is not None and mine[0]["next_retry_at"] is None  # newest first

        listed = await shenava(pipeline, "webhooks", "log", "--job", job_id, "--failed", "--json")
        assert listed.code == 0 and listed.json()["deliveries"][0]["id"] == letter["delivery_id"]
        dead = await shenava(pipeline, "webhooks", "log", "--dead")
        assert dead.code == 0 and job_id in dead.stdout

        await receiver.up()
        replayed = await shenava(pipeline, "webhooks", "replay", job_id, "--json")  # every failed delivery
        assert replayed.code == 0 and replayed.json()["deliveries"] == [letter["delivery_id"]]
        received = await receiver.next(timeout=60)
        secret = (await api.get("/shenava/v1/webhooks/secret")).json()["secret"]
        assert Webhook(secret).verify(received.body, received.headers)["job"]["id"] == job_id
        assert received.headers["webhook-id"] == letter["webhook_id"]

        async def delivered() -> list[dict[str, Any]]:
            while True:
                found = (await api.get(f"/shenava/v1/jobs/{job_id}/deliveries")).json()["deliveries"]
                if found and found[0]["delivered"]:
                    return found  # type: ignore[no-any-return]
                await asyncio.sleep(0.2)

        logged = await asyncio.wait_for(delivered(), 30)
        assert logged[0]["attempts"][-1]["status_code"] == 200 and logged[0]["attempts"][-1]["replay"]

        async def no_longer_dead() -> None:  # notify updates the views right after the job
            while any(
                d["job_id"] == job_id
                for d in (await api.get("/shenava/v1/webhooks/dead-letters")).json()["dead_letters"]
            ):
                await asyncio.sleep(0.2)

        await asyncio.wait_for(no_longer_dead(), 30)  # delivered: no longer a dead letter
    assert [r.json["job"]["id"] for r in receiver.all_notifications] == [job_id]  # once
