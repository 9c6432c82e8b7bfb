"""The SeaweedFS → NATS bridge's HTTP contract, with an in-memory publisher."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from events.models import Event, ObjectCreated
from infra.bridge import WEBHOOK_PATH, create_app

TOKEN = "s3cr3t-token"
Client = httpx.AsyncClient
EVENTS = Path(__file__).parent.parent / "events"


class MemoryPublisher:
    def __init__(self) -> None:
        self.events: list[Event] = []
        self.failing = False
        self.failures_left = 0  # attempts that fail before one succeeds
        self.opened = self.closed = False

    async def open(self) -> None:
        self.opened = True

    async def close(self) -> None:
        self.closed = True

    async def publish(self, event: Event) -> None:
        if self.failing or self.failures_left > 0:
            self.failures_left -= 1
            raise TimeoutError("nats: timeout")
        self.events.append(event)


@pytest.fixture
def publisher() -> MemoryPublisher:
    return MemoryPublisher()


@pytest.fixture
async def client(publisher: MemoryPublisher) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(TOKEN, publisher, publish_budget_s=0.5)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://bridge") as http,
    ):
        yield http
    assert publisher.closed


async def post(client: Client, name: str, token: str = TOKEN) -> int:
    body = (EVENTS / name).read_bytes()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    return (await client.post(WEBHOOK_PATH, content=body, headers=headers)).status_code


async def test_a_create_is_published_as_object_created(client: Client, publisher: MemoryPublisher) -> None:
    assert publisher.opened
    assert await post(client, "seaweedfs_create.json") == 200
    (event,) = publisher.events
    assert isinstance(event, ObjectCreated)
    assert (event.key, event.source) == ("incoming/b1/a b.wav", "seaweedfs")


@pytest.mark.parametrize("name", ["seaweedfs_delete.json", "seaweedfs_create_directory.json"])
async def test_ignored_events_answer_200(client: Client, publisher: MemoryPublisher, name: str) -> None:
    assert await post(client, name) == 200
    assert publisher.events == []


@pytest.mark.parametrize("header", ["", "Bearer wrong", f"Basic {TOKEN}", "Bearer ä"])
async def test_a_bad_token_is_refused(client: Client, publisher: MemoryPublisher, header: str) -> None:
    body = (EVENTS / "seaweedfs_create.json").read_bytes()
    response = await client.post(WEBHOOK_PATH, content=body, headers={b"Authorization": header.encode()})
    assert response.status_code == 401
    assert publisher.events == []


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", json.dumps({"what": "ever"}).encode()])
async def test_a_body_that_is_no_notification_is_a_bad_request(client: Client, body: bytes) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    assert (await client.post(WEBHOOK_PATH, content=body, headers=headers)).status_code == 400


async def test_a_failed_publish_answers_503_so_seaweedfs_retries(
    client: Client, publisher: MemoryPublisher
) -> None:
    publisher.failing = True
    assert await post(client, "seaweedfs_create.json") == 503
    publisher.failing = False
    assert await post(client, "seaweedfs_create.json") == 200
    assert len(publisher.events) == 1


async def test_a_publish_that_fails_for_a_moment_is_tried_again_before_answering(
    client: Client, publisher: MemoryPublisher
) -> None:
    """SeaweedFS does not retry a webhook answered 503: a NATS leader election must not lose it."""
    publisher.failures_left = 2
    assert await post(client, "seaweedfs_create.json") == 200
    assert len(publisher.events) == 1


def test_an_empty_token_is_refused_at_startup(publisher: MemoryPublisher) -> None:
    with pytest.raises(ValueError):
        create_app("", publisher)
