"""Who is calling: ``Authorization: Bearer KEY``, ``Token KEY`` or Basic ``apikey:KEY``."""

from __future__ import annotations

import base64
import binascii

from fastapi import Request

from functions.common.apikeys import resolve_key
from functions.common.errors import Unauthorized
from functions.common.state_store import StateStore

SCHEMES = ("bearer", "token")


def key_from_header(header: str) -> str:
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() in SCHEMES and value:
        return value
    if scheme.lower() == "basic" and value:
        try:
            user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise Unauthorized("the Basic credentials are not valid base64") from exc
        if user == "apikey" and password:
            return password
        raise Unauthorized("Basic credentials must be apikey:<your key>")
    raise Unauthorized("send your API key as 'Authorization: Bearer <key>'")


async def tenant_of(header: str | None, store: StateStore) -> str:
    """The tenant of the API key in an ``Authorization`` header, or 401."""
    if not header:
        raise Unauthorized("missing Authorization header")
    key = await resolve_key(store, key_from_header(header))
    if key is None:
        raise Unauthorized("the API key is not valid")
    return key.tenant


async def caller_tenant(request: Request) -> str:
    """FastAPI dependency: the tenant of the API key, or 401."""
    return await tenant_of(request.headers.get("authorization"), request.app.state.deps.state)
