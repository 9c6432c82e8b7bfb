"""Secrets at rest (callback user secrets) under a Fernet key from settings."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken

from functions.common.errors import ShenavaError


class SecretBox:
    def __init__(self, key: str) -> None:
        try:
            self._fernet = Fernet(key.encode())
        except ValueError as exc:
            raise ShenavaError("SHENAVA_SECRET_KEY is not a valid Fernet key") from exc

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken as exc:
            raise ShenavaError("a stored secret cannot be decrypted with this key") from exc
