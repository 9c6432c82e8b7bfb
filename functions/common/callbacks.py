"""Registered callback URLs (Watson ``register_callback``), one document per tenant and URL.

Registration sends one GET with a random ``challenge_string`` (and ``X-Callback-Signature`` over
it when a secret is given); the URL is registered only if it answers 200 with the challenge as
its body within the time limit. The user secret is stored encrypted.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import string
from dataclasses import dataclass
from enum import StrEnum

import httpx

from functions.common.clock import utcnow
from functions.common.delivery_log import DeliveryLog
from functions.common.errors import BadRequest, OutboundRefused
from functions.common.outbound import OutboundPolicy, check_target, check_url
from functions.common.secrets import SecretBox
from functions.common.signing import sign
from functions.common.state_store import StateStore

MAX_URL_LENGTH = 2048
# Watson's challenge is "alfanumérica" (its example: n9ArPGMQ36Hiu7QC): letters and digits only,
# so a receiver that checks that is never refused; 16 of 62 symbols is ~95 bits.
CHALLENGE_ALPHABET, CHALLENGE_LENGTH = string.ascii_letters + string.digits, 16


class Registration(StrEnum):
    CREATED = "created"
    ALREADY = "already created"


@dataclass(frozen=True)
class Callback:
    url: str
    secret: str | None


def tenant_secret_key(tenant: str) -> str:
    return f"tenants/{tenant}/callback-secret.json"


async def tenant_secret(store: StateStore, box: SecretBox, tenant: str) -> str | None:
    """The tenant's secret for signing TRD ``callback_urls`` notifications, if it set one."""
    found = await store.get(tenant_secret_key(tenant))
    return box.open(found[0]["secret"]) if found else None


async def set_tenant_secret(store: StateStore, box: SecretBox, tenant: str, secret: str) -> None:
    await store.put(tenant_secret_key(tenant), {"secret": box.seal(secret), "set_at": utcnow().isoformat()})


def callback_key(tenant: str, url: str) -> str:
    return f"tenants/{tenant}/callbacks/{hashlib.sha256(url.encode()).hexdigest()}.json"


class CallbackRegistry:
    def __init__(self, store: StateStore, box: SecretBox) -> None:
        self._store = store
        self._box = box

    async def find(self, tenant: str, url: str) -> Callback | None:
        found = await self._store.get(callback_key(tenant, url))
        if not found:
            return None
        sealed = found[0].get("secret")
        return Callback(url=url, secret=self._box.open(sealed) if sealed else None)

    async def register(
        self, tenant: str, url: str, secret: str | None, http: httpx.AsyncClient, timeout_s: float
    ) -> Registration:
        validate_callback_url(url)
        existing = await self.find(tenant, url)
        if existing is not None and existing.secret == secret and not await self._disabled(tenant, url):
            return Registration.ALREADY
        await challenge(url, secret, http, timeout_s)
        # It answered the challenge: a URL disabled by a 410 Gone is wanted again.
        await DeliveryLog(self._store).enable(tenant, url)
        doc = {
            "url": url,
            "secret": self._box.seal(secret) if secret else None,
            "registered_at": utcnow().isoformat(),
        }
        await self._store.put(callback_key(tenant, url), doc)
        return Registration.ALREADY if existing else Registration.CREATED

    async def _disabled(self, tenant: str, url: str) -> bool:
        return await DeliveryLog(self._store).disabled(tenant, url) is not None

    async def unregister(self, tenant: str, url: str) -> bool:
        key = callback_key(tenant, url)
        if await self._store.get(key) is None:
            return False
        await self._store.delete(key)
        return True


def validate_callback_url(url: str, field: str = "callback_url") -> None:
    if not url:
        raise BadRequest(f"{field} is required")
    if len(url) > MAX_URL_LENGTH:
        raise BadRequest(f"{field} is longer than {MAX_URL_LENGTH} characters")
    try:
        check_url(url)
    except OutboundRefused as exc:
        raise BadRequest(f"{field} is not usable: {exc}") from exc


async def check_callback_targets(urls: list[str], allowlist: str, field: str = "callback_urls") -> None:
    """At submit, the guard each URL will meet at delivery (malformed, not http(s), or resolving to
    a private address unless allowlisted → ``BadRequest``): a URL that can never be called is
    refused now, not after the whole retry schedule."""
    policy = OutboundPolicy.parse(allowlist)
    for url in urls:
        validate_callback_url(url, field)
        try:
            await check_target(url, policy)
        except OutboundRefused as exc:
            raise BadRequest(f"{field} is refused: {url}: {exc}") from exc


async def challenge(url: str, secret: str | None, http: httpx.AsyncClient, timeout_s: float) -> None:
    """One GET with a challenge string; the body must echo it within ``timeout_s``."""
    challenge_string = "".join(secrets.choice(CHALLENGE_ALPHABET) for _ in range(CHALLENGE_LENGTH))
    headers = {"Accept": "text/plain"}
    if secret:
        headers["X-Callback-Signature"] = sign(secret, challenge_string.encode())
    request = http.build_request("GET", url, headers=headers)
    request.url = request.url.copy_merge_params({"challenge_string": challenge_string})
    try:
        response = await asyncio.wait_for(http.send(request), timeout_s)
    except OutboundRefused as exc:
        raise BadRequest(f"callback_url refused: {exc}") from exc
    except (TimeoutError, httpx.TimeoutException) as exc:
        raise BadRequest(f"callback_url did not answer the challenge within {timeout_s:g} s") from exc
    except httpx.HTTPError as exc:
        raise BadRequest(f"callback_url could not be reached: {exc.__class__.__name__}") from exc
    if response.status_code != 200:
        raise BadRequest(f"callback_url answered the challenge with status {response.status_code}")
    if response.text.strip() != challenge_string:
        raise BadRequest("callback_url did not echo the challenge_string in its response body")
