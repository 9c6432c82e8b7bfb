"""Request bodies checked before any route sees them: size, time, and JSON that can be parsed.

An ASGI middleware in front of every dialect, so that malformed or oversized input is a 4xx in
the dialect's own error format, never a 500, and never costs more than the limits allow:

1. **Size, declared.** A ``Content-Length`` that is not a number → 400; one over the limit →
   413 before a byte of the body is read. Uploads (multipart, audio, video, images,
   ``application/octet-stream``) may be ``SHENAVA_MAX_AUDIO_BYTES`` plus room for the form
   around the file; every other body is read as JSON by some route and may be
   ``SHENAVA_MAX_JSON_BYTES``.
2. **Size, actual.** The body is counted while it streams (chunked bodies declare nothing, and
   a client may send more than it declared): past the limit the request ends with 413, however
   the route was reading it (a multipart parser spooling to disk included).
3. **Time.** Each piece of the body must arrive within ``SHENAVA_HTTP_READ_TIMEOUT_S`` of the
   previous one (408 otherwise); the request head has the same limit (``http_protocol``).
4. **JSON.** A body read as JSON must be UTF-8 and nested at most ``MAX_JSON_DEPTH`` deep
   (a parser recurses once per level: ``[`` × 100000 would exhaust the stack) → 400.

Routes keep their own, narrower limits (the 100-byte minimum, Kashf's image size).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from fastapi import FastAPI, Request
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from functions.common.settings import Settings

MAX_JSON_DEPTH = 64
FORM_ROOM_BYTES = 1024 * 1024  # multipart boundaries and the text fields around an uploaded file
UPLOAD_TYPES = ("multipart/form-data", "audio/", "video/", "image/", "application/octet-stream")
FORM_TYPE = "application/x-www-form-urlencoded"
_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")

Renderer = Callable[[Scope, int, str], Response]


class Rejected(Exception):
    """The request breaks a limit; ``status`` and ``message`` are what the client is told."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class BodyLimits:
    max_upload_bytes: int
    max_json_bytes: int
    read_timeout_s: float

    def for_type(self, content_type: str) -> tuple[int, bool]:
        """(byte limit, whether the body is read as JSON) for a Content-Type."""
        media_type = content_type.split(";")[0].strip().lower()
        if media_type.startswith(UPLOAD_TYPES):
            return self.max_upload_bytes + FORM_ROOM_BYTES, False
        return self.max_json_bytes, media_type != FORM_TYPE


def declared_length(headers: Headers) -> int | None:
    value = headers.get("content-length")
    if value is None:
        return None
    if not value.strip().isdigit():
        raise Rejected(400, "Content-Length is not a number")
    return int(value)


def check_json(body: bytes) -> None:
    """UTF-8, and no deeper than ``MAX_JSON_DEPTH`` (strings do not count)."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Rejected(400, f"the body is not UTF-8 (byte {exc.start})") from exc
    brackets = _STRINGS.sub(b"", body).translate(None, _NOT_BRACKETS)
    depth = 0
    for byte in brackets:
        depth += 1 if byte in b"[{" else -1
        if depth > MAX_JSON_DEPTH:
            raise Rejected(400, f"the JSON body is nested deeper than {MAX_JSON_DEPTH} levels")


@dataclass
class CountedBody:
    """The request's ``receive``, counted against a limit and timed between pieces."""

    receive: Receive
    limit: int
    timeout_s: float
    received: int = 0
    rejection: Rejected | None = field(default=None)

    async def __call__(self) -> Message:
        try:
            message = await asyncio.wait_for(self.receive(), self.timeout_s)
        except TimeoutError:
            self.rejection = Rejected(408, f"the request body stalled for {self.timeout_s:g} s")
            raise self.rejection from None
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.limit:
                self.rejection = Rejected(413, f"the request body is larger than {self.limit} bytes")
                raise self.rejection
        return message

    async def read_all(self) -> bytes:
        chunks = []
        while True:
            message = await self()
            chunks.append(message.get("body", b""))
            if message["type"] != "http.request" or not message.get("more_body", False):
                return b"".join(chunks)


def replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the app the body already read, then waits as the server would."""
    sent = False

    async def again() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again


class RequestLimits:
    """The middleware; ``render(scope, status, message)`` answers in the dialect's format."""

    def __init__(self, app: ASGIApp, limits: BodyLimits, render: Renderer) -> None:
        self.app = app
        self.limits = limits
        self.render = render

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        limit, as_json = self.limits.for_type(headers.get("content-type", ""))
        body = CountedBody(receive, limit, self.limits.read_timeout_s)
        try:
            declared = declared_length(headers)
            if declared is not None and declared > limit:
                raise Rejected(413, f"the request body is larger than {limit} bytes")
            if as_json and declared != 0 and scope["method"] not in {"GET", "HEAD", "DELETE"}:
                raw = await body.read_all()
                check_json(raw)
                await self.app(scope, replay(raw, receive), send)
                return
        except Rejected as rejected:
            await self._answer(scope, send, rejected)
            return
        await self._streamed(scope, body, send)

    async def _streamed(self, scope: Scope, body: CountedBody, send: Send) -> None:
        """Run the app on a counted body; if the body broke a limit, whatever the app made of
        that (a parser's 400, an exception) gives way to the limit's own answer."""
        started = False

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if body.rejection is None:
                started = True
                await send(message)

        try:
            await self.app(scope, body, guarded_send)
        except Exception:
            if body.rejection is None:
                raise
        if body.rejection is not None and not started:
            await self._answer(scope, send, body.rejection)

    async def _answer(self, scope: Scope, send: Send, rejected: Rejected) -> None:
        response = self.render(scope, rejected.status, rejected.message)
        response.headers["connection"] = "close"  # the rest of the body is not read
        await response(scope, _nothing, send)


async def _nothing() -> Message:
    return {"type": "http.disconnect"}


def install(app: FastAPI, settings: Settings, render: Callable[[Request, int, str], Response]) -> None:
    """The middleware with the settings' limits, and a 400 for input nested too deep for a
    parser that a route runs itself (a JSON list in a form field)."""
    limits = BodyLimits(
        max_upload_bytes=settings.max_audio_bytes,
        max_json_bytes=settings.max_json_bytes,
        read_timeout_s=settings.http_read_timeout_s,
    )
    app.add_middleware(RequestLimits, limits=limits, render=lambda scope, status, message: render(
        Request(scope), status, message))  # fmt: skip

    async def too_deep(request: Request, exc: Exception) -> Response:
        return render(request, 400, "the input is nested too deeply")

    app.add_exception_handler(RecursionError, too_deep)
