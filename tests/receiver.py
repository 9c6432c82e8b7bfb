"""A real webhook receiver on loopback, as a subscriber would write one (aiohttp).

It answers Watson's challenge GET (checking its signature), records every POSTed notification
with its signature and headers, and can misbehave on purpose: echo a wrong challenge, answer
slowly, answer with another status (410 Gone), or be down (its socket closed) for a while.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from functions.common.signing import verify

# Watson's document: "uma sequência de desafio alfanumérica aleatória" (n9ArPGMQ36Hiu7QC).
ALPHANUMERIC = re.compile(r"^[A-Za-z0-9]+$")


@dataclass
class Received:
    body: bytes
    signature: str | None
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body)  # type: ignore[no-any-return]


@dataclass
class Receiver:
    secret: str | None = None
    mode: str = "ok"  # ok | wrong | slow
    status: int = 200  # what a notification POST is answered with (410: "gone, stop sending")
    slow_s: float = 8.0
    port: int = 0
    challenges: list[dict[str, str]] = field(default_factory=list)
    notifications: asyncio.Queue[Received] = field(default_factory=asyncio.Queue)
    all_notifications: list[Received] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    _site: web.TCPSite | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/results"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/results", self._challenge)
        app.router.add_post("/results", self._notify)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await self.up()

    async def up(self) -> None:
        assert self._runner is not None
        self._site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await self._site.start()
        if not self.port:
            server = self._site._server
            self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def down(self) -> None:
        """Close the listening socket: connections are refused until ``up``."""
        if self._site is not None:
            await self._site.stop()
            self._site = None

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _challenge(self, request: web.Request) -> web.Response:
        challenge = request.query.get("challenge_string", "")
        signature = request.headers.get("X-Callback-Signature", "")
        self.challenges.append(
            {"challenge": challenge, "signature": signature, "accept": request.headers.get("Accept", "")}
        )
        if self.secret and not verify(self.secret, challenge.encode(), signature):
            return web.Response(status=401, text="bad signature")
        if not ALPHANUMERIC.match(challenge):  # a receiver may check what the document promises
            return web.Response(status=400, text="the challenge_string is not alphanumeric")
        if self.mode == "slow":
            await asyncio.sleep(self.slow_s)
        if self.mode == "wrong":
            challenge = challenge[::-1] + "x"
        return web.Response(text=challenge, content_type="text/plain")

    async def _notify(self, request: web.Request) -> web.Response:
        headers = {name.lower(): value for name, value in request.headers.items()}
        received = Received(await request.read(), request.headers.get("X-Callback-Signature"), headers)
        self.all_notifications.append(received)
        await self.notifications.put(received)
        return web.Response(status=self.status, text="ok")

    async def next(self, timeout: float) -> Received:
        return await asyncio.wait_for(self.notifications.get(), timeout)

    def signed_correctly(self, received: Received) -> bool:
        return bool(
            self.secret and received.signature and verify(self.secret, received.body, received.signature)
        )
