"""JSON documents in the state bucket, with conditional writes as the only concurrency control.

``create`` uses ``If-None-Match: *``; ``update`` reads, applies a pure function and writes with
``If-Match: <etag>``, re-reading and retrying when another writer got there first (412).
``MemoryStateStore`` implements the same protocol for unit tests.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Protocol

from botocore.exceptions import ClientError

from functions.common.errors import ConflictError

Document = dict[str, Any]
Mutation = Callable[[Document | None], Document | None]

MAX_UPDATE_ATTEMPTS = 20


class AlreadyExists(Exception):
    """``create`` found a document at that key."""


class StateStore(Protocol):
    async def get(self, key: str) -> tuple[Document, str] | None: ...

    async def create(self, key: str, doc: Document) -> str: ...

    async def replace(self, key: str, doc: Document, etag: str) -> str: ...

    async def put(self, key: str, doc: Document) -> str:
        """Unconditional write, for documents with one writer (a job's transcript)."""
        ...

    async def delete(self, key: str) -> None: ...

    async def list_keys(self, prefix: str) -> list[str]: ...

    async def versions(self, prefix: str) -> dict[str, str]:
        """Every key under ``prefix`` with its etag, from the listing alone (nothing is read):
        how a reader that keeps copies learns which of them changed."""
        ...


class PreconditionFailed(Exception):
    """A conditional write found the object changed (or present, or absent)."""


async def update(store: StateStore, key: str, mutate: Mutation) -> Document | None:
    """Apply ``mutate`` to the stored document until the conditional write wins.

    ``mutate`` gets the current document (or None) and returns the new one, or None to leave
    the store untouched. It must be pure: it may run several times.
    """
    for _ in range(MAX_UPDATE_ATTEMPTS):
        current = await store.get(key)
        doc, etag = current if current else (None, "")
        new = mutate(json.loads(json.dumps(doc)) if doc is not None else None)
        if new is None:
            return doc
        try:
            if current is None:
                await store.create(key, new)
            else:
                await store.replace(key, new, etag)
            return new
        except (PreconditionFailed, AlreadyExists):
            continue
    raise ConflictError(f"gave up updating {key} after {MAX_UPDATE_ATTEMPTS} conflicting writes")


def _encode(doc: Document) -> bytes:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


class S3StateStore:
    """The state bucket on any S3 API with conditional writes (SeaweedFS ≥ 4.18, MinIO, AWS)."""

    def __init__(self, client: Any, bucket: str) -> None:
        self._s3 = client
        self._bucket = bucket

    async def get(self, key: str) -> tuple[Document, str] | None:
        try:
            response = await self._s3.get_object(Bucket=self._bucket, Key=key)
        except ClientError as exc:
            if _code(exc) in {"NoSuchKey", "404"}:
                return None
            raise
        async with response["Body"] as body:
            data = await body.read()
        return json.loads(data), response["ETag"]

    async def create(self, key: str, doc: Document) -> str:
        try:
            response = await self._s3.put_object(
                Bucket=self._bucket,
                Key=key,
                Body=_encode(doc),
                ContentType="application/json",
                IfNoneMatch="*",
            )
        except ClientError as exc:
            if _code(exc) in {"PreconditionFailed", "412", "ConditionalRequestConflict"}:
                raise AlreadyExists(key) from exc
            raise
        return str(response["ETag"])

    async def replace(self, key: str, doc: Document, etag: str) -> str:
        try:
            response = await self._s3.put_object(
                Bucket=self._bucket,
                Key=key,
                Body=_encode(doc),
                ContentType="application/json",
                IfMatch=etag,
            )
        except ClientError as exc:
            if _code(exc) in {"PreconditionFailed", "412", "ConditionalRequestConflict", "NoSuchKey"}:
                raise PreconditionFailed(key) from exc
            raise
        return str(response["ETag"])

    async def put(self, key: str, doc: Document) -> str:
        response = await self._s3.put_object(
            Bucket=self._bucket, Key=key, Body=_encode(doc), ContentType="application/json"
        )
        return str(response["ETag"])

    async def delete(self, key: str) -> None:
        await self._s3.delete_object(Bucket=self._bucket, Key=key)

    async def list_keys(self, prefix: str) -> list[str]:
        keys: list[str] = []
        paginator = self._s3.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self._bucket, Prefix=prefix):
            keys.extend(item["Key"] for item in page.get("Contents", []))
        return sorted(keys)

    async def versions(self, prefix: str) -> dict[str, str]:
        found: dict[str, str] = {}
        paginator = self._s3.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self._bucket, Prefix=prefix):
            found.update((item["Key"], str(item["ETag"])) for item in page.get("Contents", []))
        return found


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class MemoryStateStore:
    """In-memory store with the same etag semantics, for unit tests."""

    def __init__(self) -> None:
        self._docs: dict[str, tuple[bytes, str]] = {}
        self._version = 0

    def _next_etag(self) -> str:
        self._version += 1
        return f'"{self._version}"'

    async def get(self, key: str) -> tuple[Document, str] | None:
        found = self._docs.get(key)
        return (json.loads(found[0]), found[1]) if found else None

    async def create(self, key: str, doc: Document) -> str:
        if key in self._docs:
            raise AlreadyExists(key)
        etag = self._next_etag()
        self._docs[key] = (_encode(doc), etag)
        return etag

    async def replace(self, key: str, doc: Document, etag: str) -> str:
        if key not in self._docs or self._docs[key][1] != etag:
            raise PreconditionFailed(key)
        new_etag = self._next_etag()
        self._docs[key] = (_encode(doc), new_etag)
        return new_etag

    async def put(self, key: str, doc: Document) -> str:
        etag = self._next_etag()
        self._docs[key] = (_encode(doc), etag)
        return etag

    async def delete(self, key: str) -> None:
        self._docs.pop(key, None)

    async def list_keys(self, prefix: str) -> list[str]:
        return sorted(k for k in self._docs if k.startswith(prefix))

    async def versions(self, prefix: str) -> dict[str, str]:
        return {k: etag for k, (_, etag) in self._docs.items() if k.startswith(prefix)}
