"""The SeaweedFS → NATS bridge: filer webhook in, ``ObjectCreated`` events out.

SeaweedFS's filer posts one JSON event per file change to ``POST /seaweedfs/events`` with a bearer
token (see ``infra/stack.py`` for its ``notification.toml``). The bridge checks the token,
normalises the payload (``events.s3_records``; MinIO and AWS shapes are understood too) and
publishes each object on ``shenava.s3.object.created`` with its dedupe key as ``Nats-Msg-Id``.

Answers: 200 once NATS took every event (its publish acknowledgement: stored, on a cluster by a
quorum) or the notification is ignored, 401 on a bad token, 400 on a body that is not a known
notification, 503 when NATS does not take the event within ``publish_budget_s``. SeaweedFS 4.48
does *not* retry a webhook answered 503 (it logs "dead letter"), so the bridge itself keeps
trying for up to ``publish_budget_s`` (a cluster electing a new stream leader, a nats-server
being restarted), within the webhook's 10 s timeout; what is lost beyond that the reconciler
finds (``infra/reconciler.py``).

``python -m infra.bridge`` serves it on ``bind_host:bridge_port``, token from endpoints.json.
"""

from __future__ import annotations

import asyncio
import hmac
import itertools
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol

import uvicorn
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from events.bus import connect, publish_event
from events.models import Event
from events.s3_records import UnknownPayload, normalise
from functions.common.settings import Settings

log = logging.getLogger("shenava.bridge")

WEBHOOK_PATH = "/seaweedfs/events"
PUBLISH_TIMEOUT_S = 2.0  # one attempt
PUBLISH_BUDGET_S = 8.0  # all attempts for one notification; SeaweedFS waits 10 s for an answer
RETRY_PAUSE_S = (0.1, 0.25, 0.5, 1.0)


class EventPublisher(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def publish(self, event: Event) -> None: ...


class JetStreamPublisher:
    """Publishes on the SHENAVA stream; connects when the app starts."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._nc: NATS | None = None
        self._js: JetStreamContext | None = None

    async def open(self) -> None:
        self._nc, self._js = await connect(self._settings, name="shenava-bridge")

    async def close(self) -> None:
        if self._nc is not None:
            await self._nc.drain()
            self._nc = None

    async def publish(self, event: Event) -> None:
        if self._js is None:
            raise RuntimeError("publisher is not open")
        await asyncio.wait_for(publish_event(self._js, event), PUBLISH_TIMEOUT_S)


def bearer_token_matches(request: Request, token: str) -> bool:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    # Constant-time compare, on bytes so that non-ASCII input cannot raise.
    return scheme.lower() == "bearer" and hmac.compare_digest(given.encode(), token.encode())


async def _read_json(request: Request) -> dict[str, Any] | None:
    try:
        payload = json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return payload if isinstance(payload, dict) else None


def create_app(
    token: str, publisher: EventPublisher, publish_budget_s: float = PUBLISH_BUDGET_S
) -> Starlette:
    """The bridge app; the lifespan opens and closes ``publisher``."""
    if not token:
        raise ValueError("the bridge needs a bearer token")

    async def seaweedfs_events(request: Request) -> JSONResponse:
        if not bearer_token_matches(request, token):
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        payload = await _read_json(request)
        if payload is None:
            return JSONResponse({"error": "body must be a JSON object"}, status_code=400)
        return await _publish_payload(payload, publisher, publish_budget_s)

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await publisher.open()
        try:
            yield
        finally:
            await publisher.close()

    routes = [
        Route(WEBHOOK_PATH, seaweedfs_events, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


async def publish_patiently(publisher: EventPublisher, event: Event, budget_s: float) -> None:
    """Publish, trying again after short pauses until ``budget_s`` has passed; then re-raise."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + budget_s
    for attempt in itertools.count():
        try:
            await publisher.publish(event)
            return
        except Exception:
            pause = RETRY_PAUSE_S[min(attempt, len(RETRY_PAUSE_S) - 1)]
            if loop.time() + pause >= deadline:
                raise
            await asyncio.sleep(pause)


async def _publish_payload(
    payload: dict[str, Any], publisher: EventPublisher, budget_s: float
) -> JSONResponse:
    try:
        # Any of the three shapes: a MinIO webhook target with a bearer token works too.
        events = normalise(payload)
    except UnknownPayload as exc:
        log.warning("unknown notification: %s", exc)
        return JSONResponse({"error": str(exc)}, status_code=400)
    for event in events:
        try:
            await publish_patiently(publisher, event, budget_s)
        except Exception:
            # Anything from NATS (down, timeout, no stream) is transient: SeaweedFS retries.
            log.exception("publish failed", extra={"event_id": event.id})
            return JSONResponse({"error": "event bus unavailable"}, status_code=503)
        log.info("published", extra={"event_id": event.id, "event_type": event.type})
    return JSONResponse({"published": len(events)})


class BridgeServer:
    """The bridge under uvicorn inside the current event loop (tests, embedding)."""

    def __init__(self, settings: Settings, token: str) -> None:
        app = create_app(token, JetStreamPublisher(settings))
        config = uvicorn.Config(
            app,
            host=settings.bind_host,
            port=settings.bridge_port,
            log_config=None,
            access_log=False,
            lifespan="on",
        )
        self._server = uvicorn.Server(config)
        self._task: asyncio.Task[None] | None = None

    async def start(self, timeout_s: float = 10.0) -> None:
        self._task = asyncio.create_task(self._server.serve())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not self._server.started:
            if self._task.done():
                self._task.result()  # re-raises why it stopped
                raise RuntimeError("bridge stopped during startup")
            if loop.time() > deadline:
                raise TimeoutError("bridge did not start")
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        if self._task is None:
            return
        self._server.should_exit = True
        task, self._task = self._task, None
        # A failure at startup was already raised by start(); shutdown must not raise it again.
        await asyncio.gather(task, return_exceptions=True)


def bridge_token(settings: Settings) -> str:
    """The token the embedded stack generated (load_settings reads it from endpoints.json)."""
    if not settings.bridge_token:
        raise SystemExit(f"no bridge_token in {settings.endpoints_file}: start the embedded stack first")
    return settings.bridge_token


def main() -> None:
    from functions.common.logs import configure_logging
    from functions.common.settings import load_settings

    settings = load_settings()
    configure_logging(settings.log_level)
    app = create_app(bridge_token(settings), JetStreamPublisher(settings))
    uvicorn.run(
        app,
        host=settings.bind_host,
        port=settings.bridge_port,
        log_config=None,
        access_log=False,
        proxy_headers=False,
    )


if __name__ == "__main__":
    main()
