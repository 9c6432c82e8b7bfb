"""A worker's ``/healthz`` and ``/metrics`` (Prometheus text, the process's default registry: the
runner's event counters, latencies and consumer gauges, and what the function counts itself —
the engine's realtime factor, webhook attempts).

A tiny HTTP/1.1 server on the worker's own event loop, so an answer proves the loop is alive:
one request per connection, the head read within ``READ_TIMEOUT_S``, nothing else served.
``/healthz`` answers 200 while the worker's runner loop is up, 503 before and after.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

log = logging.getLogger("shenava.observability")

READ_TIMEOUT_S = 5.0
MAX_HEAD_BYTES = 8192

Status = Callable[[], dict[str, object]]  # {"status": "ok" | other, ...}: 200 only for "ok"


class ObservabilityServer:
    def __init__(self, host: str, port: int, status: Status) -> None:
        self.host = host
        self.port = port
        self._status = status
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        """Listen; returns the port (the OS picks one when ``port`` is 0)."""
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        log.info("health and metrics on http://%s:%d/healthz and /metrics", self.host, self.port)
        return self.port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT_S)
            writer.write(self._answer(head[:MAX_HEAD_BYTES]))
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    def _answer(self, head: bytes) -> bytes:
        method, _, rest = head.partition(b" ")
        path = rest.split(b" ", 1)[0].split(b"?", 1)[0]
        if method not in {b"GET", b"HEAD"}:
            return _response(405, "text/plain", b"method not allowed\n")
        if path == b"/healthz":
            status = self._status()
            body = json.dumps(status).encode()
            return _response(200 if status.get("status") == "ok" else 503, "application/json", body)
        if path == b"/metrics":
            return _response(200, CONTENT_TYPE_LATEST, generate_latest(REGISTRY))
        return _response(404, "text/plain", b"not found\n")


def _response(status: int, content_type: str, body: bytes) -> bytes:
    reason = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}[status]
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body
