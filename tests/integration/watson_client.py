"""A Watson client and a completion counter for tests that drive whole deployments through
the API while parts of them die: submissions refused meanwhile are retried as a client would, and
results are counted from the signed callbacks a real receiver gets."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.receiver import Received, Receiver

SECRET = "chaos-secret"


@dataclass
class Completions:
    """Watson completion callbacks by job id, as a real receiver got them, each delivery counted
    once by its ``webhook-id`` (as a Standard Webhooks receiver deduplicates): a notify worker
    killed between the receiver's answer and its record sends that delivery again, under the
    same id (``resent``). Two ids for one job would be two deliveries: a job completed twice."""

    receiver: Receiver
    deliveries: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    resent: int = 0

    @property
    def by_job(self) -> dict[str, int]:
        return {job: len(ids) for job, ids in self.deliveries.items()}

    async def wait_for(self, job_ids: set[str], timeout_s: float) -> None:
        async def all_in() -> None:
            while not job_ids <= set(self.deliveries):
                received = await self.receiver.next(timeout=timeout_s)
                if self.receiver.signed_correctly(received):
                    self._count(received)

        await asyncio.wait_for(all_in(), timeout_s)

    def settle(self) -> None:
        """Count what arrived since (a duplicate would be here)."""
        while not self.receiver.notifications.empty():
            self._count(self.receiver.notifications.get_nowait())

    def _count(self, received: Received) -> None:
        body = received.json
        if body["event"] != "recognitions.completed_with_results":
            return
        webhook_id = received.headers.get("webhook-id", "")
        assert webhook_id, "every notification names its delivery (webhook-id)"
        ids = self.deliveries[str(body["id"])]
        self.resent += webhook_id in ids
        ids.add(webhook_id)


class Watson:
    """A Watson client: registers the receiver, submits audio, retrying what was refused while
    a part was down (a refused submission stored nothing)."""

    def __init__(self, api_url: str, api_key: str, receiver: Receiver) -> None:
        self.api_url, self.api_key, self.receiver = api_url, api_key, receiver
        self.accepted: list[str] = []

    def client(self) -> httpx.AsyncClient:
        auth = {"Authorization": f"Bearer {self.api_key}"}
        return httpx.AsyncClient(base_url=self.api_url, headers=auth, timeout=60)

    async def register(self) -> None:
        params = {"callback_url": self.receiver.url, "user_secret": SECRET}
        async with self.client() as api:
            response = await api.post("/v1/register_callback", params=params)
        assert response.status_code in (200, 201), response.text

    async def submit(self, audio: bytes, attempts: int = 30) -> str:
        params = {"callback_url": self.receiver.url, "events": "recognitions.completed_with_results",
                  "language": "en"}  # fmt: skip
        async with self.client() as api:
            for _ in range(attempts):
                try:
                    response = await api.post("/v1/recognitions", params=params, content=audio,
                                              headers={"Content-Type": "audio/wav"})  # fmt: skip
                except httpx.TransportError:
                    response = None
                if response is not None and response.status_code == 201:
                    job_id = str(response.json()["id"])
                    self.accepted.append(job_id)
                    return job_id
                assert response is None or response.status_code >= 500, response.text
                await asyncio.sleep(1.0)  # a part is restarting: try again, as a client would
        raise AssertionError("the API never accepted the audio")

    async def statuses(self, job_ids: list[str]) -> dict[str, Any]:
        async with self.client() as api:
            answers = [await api.get(f"/v1/recognitions/{job_id}") for job_id in job_ids]
        return {job_id: answer.json().get("status") for job_id, answer in zip(job_ids, answers, strict=True)}
