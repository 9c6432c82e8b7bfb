"""uvicorn's HTTP/1.1 protocol with a deadline for the request head.

uvicorn closes an idle keep-alive connection, but a connection that sends part of a request
head (or nothing at all) is held open for as long as the client likes: a few hundred such
connections exhaust the server (slowloris). Here the head must be complete within
``head_timeout_s`` of the connection opening, or of the first byte after the previous
response; else the connection is closed. The body has its own per-piece limit (``limits``).
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


class HeadDeadlineProtocol(H11Protocol):
    head_timeout_s: float = 30.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_deadline: asyncio.TimerHandle | None = None
        self._upgraded = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._waiting_for_head():
            self._arm()
        else:
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        self._upgraded = True  # the websocket protocol owns the transport from here
        self._disarm()
        super().handle_websocket_upgrade(event)

    def _waiting_for_head(self) -> bool:
        return not self._upgraded and (self.cycle is None or self.cycle.response_complete)

    def _arm(self) -> None:
        if self._head_deadline is None and not self._upgraded:
            self._head_deadline = self.loop.call_later(self.head_timeout_s, self._head_too_slow)

    def _disarm(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_too_slow(self) -> None:
        self._head_deadline = None
        if self._waiting_for_head() and not self.transport.is_closing():
            self.transport.close()


def protocol_with_head_timeout(timeout_s: float) -> type[HeadDeadlineProtocol]:
    """The protocol class for ``uvicorn.Config(http=…)`` with this deadline."""
    return type("HeadDeadline", (HeadDeadlineProtocol,), {"head_timeout_s": timeout_s})
