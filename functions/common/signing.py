"""Watson's callback signature: base64 of HMAC-SHA1 over the exact bytes, keyed by the secret."""

from __future__ import annotations

import base64
import hashlib
import hmac


def sign(secret: str, payload: bytes) -> str:
    digest = hmac.new(secret.encode(), payload, hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def verify(secret: str, payload: bytes, signature: str) -> bool:
    return hmac.compare_digest(sign(secret, payload), signature)
