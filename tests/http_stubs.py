"""Small aiohttp stand-ins for the remote servers tests talk to (media hosts, redirectors)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def answer(make: Callable[[web.Request], web.StreamResponse]) -> Handler:
    """An aiohttp handler answering ``make(request)`` (a response, or a redirect such as ``HTTPFound``)."""

    async def handler(request: web.Request) -> web.StreamResponse:
        return make(request)

    return handler
