"""Standard Webhooks signing: a per-tenant ``whsec_`` secret, rotated without downtime.

Every notification (Watson callbacks, TRD ``callback_urls``, async OpenAI jobs) carries
``webhook-id``, ``webhook-timestamp`` and ``webhook-signature`` beside the dialect's own
``X-Callback-Signature``. The signature is ``v1,`` + base64 of HMAC-SHA256 over
``{webhook-id}.{webhook-timestamp}.{body}``, keyed by the secret's bytes (base64 after ``whsec_``),
as the Standard Webhooks specification has it.

The tenant's secrets live sealed in ``tenants/<tenant>/webhook-secret.json``, newest first. A
rotation keeps the previous secret signing too for ``ROTATION_GRACE`` (the header then holds two
signatures, space-separated), so receivers can switch without losing a notification. The first
secret is made by the first notification, by ``GET /shenava/v1/webhooks/secret`` or by
``python -m functions.common.apikeys webhook-secret --tenant T`` (``--rotate`` to rotate).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from functions.common.clock import utcnow
from functions.common.secrets import SecretBox
from functions.common.state_store import AlreadyExists, Document, PreconditionFailed, StateStore, update

PREFIX = "whsec_"
SECRET_BYTES = 32  # the specification asks for 24 to 64
ROTATION_GRACE = timedelta(hours=24)


def secret_key(tenant: str) -> str:
    return f"tenants/{tenant}/webhook-secret.json"


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1,<base64>`` signature of the message."""
    key = base64.b64decode(secret.removeprefix(PREFIX))
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def signature_header(signing: list[str], webhook_id: str, timestamp: int, body: bytes) -> str:
    """``webhook-signature``: one signature per secret still signing, space-separated."""
    return " ".join(sign(secret, webhook_id, timestamp, body) for secret in signing)


def _sealed(box: SecretBox, secret: str, now: datetime) -> dict[str, str]:
    return {"secret": box.seal(secret), "created_at": now.isoformat()}


class WebhookSecrets:
    """A tenant's ``whsec_`` secrets in the state store (sealed at rest)."""

    def __init__(self, store: StateStore, box: SecretBox) -> None:
        self._store = store
        self._box = box

    async def signing(self, tenant: str, now: datetime | None = None) -> list[str]:
        """The secrets a notification is signed with now: the current one (made if there is none
        yet), then the one it replaced while that is inside its grace period."""
        await self.current(tenant)
        found = await self._store.get(secret_key(tenant))
        assert found is not None
        now = now or utcnow()
        kept = found[0]["secrets"]
        chosen = [self._box.open(kept[0]["secret"])]
        if len(kept) > 1 and now - datetime.fromisoformat(kept[0]["created_at"]) < ROTATION_GRACE:
            chosen.append(self._box.open(kept[1]["secret"]))
        return chosen

    async def current(self, tenant: str) -> str:
        """The tenant's secret, made on first use (two makers at once: one wins, both read it)."""
        found = await self._store.get(secret_key(tenant))
        if found is None:
            doc = {"secrets": [_sealed(self._box, new_secret(), utcnow())]}
            with contextlib.suppress(AlreadyExists, PreconditionFailed):  # another made it: read theirs
                await self._store.create(secret_key(tenant), doc)
            found = await self._store.get(secret_key(tenant))
            assert found is not None
        return self._box.open(found[0]["secrets"][0]["secret"])

    async def rotate(self, tenant: str) -> str:
        """A new current secret; the previous one keeps signing for ``ROTATION_GRACE``."""
        fresh = new_secret()
        now = utcnow()

        def add(doc: Document | None) -> Document:
            kept = list(doc["secrets"]) if doc else []
            return {"secrets": [_sealed(self._box, fresh, now), *kept[:1]]}

        await update(self._store, secret_key(tenant), add)
        return fresh
