"""A client that sends half a request head, or half a body, is not held open: the API under
uvicorn with Shenava's protocol, on loopback, read by raw sockets."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import uvicorn
from cryptography.fernet import Fernet
from websockets.asyncio.client import connect

from functions.api.app import create_app
from functions.api.http_protocol import protocol_with_head_timeout
from functions.common.apikeys import create_key
from functions.common.settings import Settings
from functions.common.state_store import MemoryStateStore
from tests.fakes import DirMediaStore, MemoryBus, until_listening

READ_TIMEOUT_S = 0.5
CLOSED_WITHIN_S = 10.0  # far above the limit; without one the connection stays open for ever


KEYS: dict[int, str] = {}  # port → an API key of that server


@pytest.fixture
async def api_port(tmp_path: Path) -> AsyncIterator[int]:
    settings = Settings(
        data_dir=tmp_path, secret_key=Fernet.generate_key().decode(), http_read_timeout_s=READ_TIMEOUT_S
    )
    state = MemoryStateStore()
    app = create_app(settings, state=state, media=DirMediaStore(tmp_path), bus=MemoryBus())
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                            http=protocol_with_head_timeout(READ_TIMEOUT_S))  # fmt: skip
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    await until_listening(server, task)
    port = server.servers[0].sockets[0].getsockname()[1]
    KEYS[port] = await create_key(state, "acme")
    yield port
    server.should_exit = True
    await task


async def answer_to(port: int, sent: bytes) -> bytes:
    """Everything the server sends until it closes the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(sent)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(), CLOSED_WITHIN_S)
    finally:
        writer.close()


async def test_a_half_sent_head_is_closed(api_port: int) -> None:
    assert await answer_to(api_port, b"POST /v1/recognitions HTTP/1.1\r\nHost: x\r\n") == b""


async def test_a_connection_that_sends_nothing_is_closed(api_port: int) -> None:
    assert await answer_to(api_port, b"") == b""


async def test_a_half_sent_body_is_answered_408_and_closed(api_port: int) -> None:
    head = (
        b"POST /api/tag_texts/ HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    )
    answer = await answer_to(api_port, head + b'{"dataset": ')
    assert answer.startswith(b"HTTP/1.1 408"), answer


async def test_a_whole_request_on_a_kept_alive_connection_is_answered(api_port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", api_port)
    try:
        for _ in range(2):
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert (await asyncio.wait_for(reader.readline(), CLOSED_WITHIN_S)).startswith(b"HTTP/1.1 200")
            await asyncio.wait_for(reader.readuntil(b'{"status":"ok"}'), CLOSED_WITHIN_S)
    finally:
        writer.close()


async def test_a_websocket_upgrade_is_not_cut_by_the_head_deadline(api_port: int) -> None:
    """The live Harf socket goes through the same protocol: the deadline ends with the upgrade."""
    uri = f"ws://127.0.0.1:{api_port}/ws_api/transcribe_files/wav/sync/"
    async with connect(uri, additional_headers={"Authorization": f"Token {KEYS[api_port]}"}) as ws:
        await asyncio.sleep(READ_TIMEOUT_S * 3)  # past the head deadline: the socket must live on
        await ws.send("not audio")  # answered, so the socket was still open
        answer = json.loads(await asyncio.wait_for(ws.recv(), CLOSED_WITHIN_S))
    assert answer["state"] == "FAILURE" and "binary" in answer["detail"]
