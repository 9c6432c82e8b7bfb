"""``python -m functions.api``: serve the API with uvicorn on SHENAVA_API_HOST:SHENAVA_API_PORT.

With more than one API process (``SHENAVA_API_PROCESSES``, or one per 4 cores; ``make up`` starts
them), each binds the port with ``SO_REUSEPORT`` and the kernel spreads new connections among
them. A process given ``SHENAVA_METRICS_PORT`` also answers ``/healthz`` there, on its own event
loop, so a supervisor can tell which of several processes stopped answering.
"""

from __future__ import annotations

import asyncio
import os
import socket

import uvicorn

from functions.api.app import create_app
from functions.api.http_protocol import protocol_with_head_timeout
from functions.common.logs import configure_logging
from functions.common.observability import ObservabilityServer
from functions.common.settings import Settings, load_settings


def shared_socket(host: str, port: int) -> socket.socket:
    """A listening socket other processes may bind too (the kernel balances between them)."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(address)
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


async def serve(settings: Settings) -> None:
    config = uvicorn.Config(
        create_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        log_config=None,
        proxy_headers=False,
        http=protocol_with_head_timeout(settings.http_read_timeout_s),
    )
    server = uvicorn.Server(config)
    sockets = (
        [shared_socket(settings.api_host, settings.api_port)] if settings.api_process_count > 1 else None
    )
    health = None
    if settings.metrics_port:
        pid = os.getpid()
        health = ObservabilityServer(
            settings.metrics_host,
            settings.metrics_port,
            lambda: {"status": "ok" if server.started else "starting", "pid": pid},
        )
        await health.start()
    try:
        await server.serve(sockets=sockets)
    finally:
        if health is not None:
            await health.close()


if __name__ == "__main__":
    settings = load_settings()
    configure_logging(settings.log_level)
    asyncio.run(serve(settings))
