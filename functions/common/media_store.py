"""Media objects in the media bucket: uploads, drop-folder files, normalised audio.

Key layout (the ingest function and the bridge filter on these prefixes):
  uploads/<tenant>/<job_id>/<filename>   media sent through the API
  incoming/<batch>/<file>                the drop folder, written by any S3 client
  normalized/<tenant>/<job_id>.wav       16 kHz PCM made by ingest (never re-ingested)
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Protocol

from botocore.exceptions import ClientError

UPLOADS = "uploads/"
INCOMING = "incoming/"
BATCH_CONFIG = "_config.json"  # incoming/<batch>/_config.json: a drop-folder batch's options
NORMALIZED = "normalized/"

UPLOAD_CHUNK = 8 * 1024 * 1024


def upload_key(tenant: str, job_id: str, filename: str) -> str:
    return f"{UPLOADS}{tenant}/{job_id}/{filename}"


def normalized_key(tenant: str, job_id: str) -> str:
    return f"{NORMALIZED}{tenant}/{job_id}.wav"


class MediaStore(Protocol):
    async def put_file(
        self, key: str, path: Path, content_type: str, metadata: dict[str, str] | None = None
    ) -> None: ...

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> None: ...

    async def download(self, key: str, path: Path) -> dict[str, str]:
        """Write the object to ``path``; return its user metadata."""
        ...

    async def copy(self, source: str, target: str) -> None:
        """Copy inside the bucket; FileNotFoundError when ``source`` is gone."""
        ...

    async def size(self, key: str) -> int:
        """The object's size in bytes; FileNotFoundError when it is not stored."""
        ...

    def chunks(self, key: str, first: int, last: int) -> AsyncIterator[bytes]:
        """Bytes ``first`` to ``last`` (inclusive) of the object, read as they are sent on."""
        ...

    async def delete(self, key: str) -> None: ...

    async def delete_prefix(self, prefix: str) -> None: ...


class S3MediaStore:
    def __init__(self, client: Any, bucket: str) -> None:
        self._s3 = client
        self._bucket = bucket

    async def put_file(
        self, key: str, path: Path, content_type: str, metadata: dict[str, str] | None = None
    ) -> None:
        with path.open("rb") as body:
            await self._s3.put_object(
                Bucket=self._bucket,
                Key=key,
                Body=body,
                ContentType=content_type or "application/octet-stream",
                Metadata=metadata or {},
            )

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        await self._s3.put_object(Bucket=self._bucket, Key=key, Body=data, ContentType=content_type)

    async def download(self, key: str, path: Path) -> dict[str, str]:
        try:
            response = await self._s3.get_object(Bucket=self._bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404"}:
                raise FileNotFoundError(key) from exc
            raise
        async with response["Body"] as body:
            with path.open("wb") as out:
                while chunk := await body.read(UPLOAD_CHUNK):
                    out.write(chunk)
        return dict(response.get("Metadata", {}))

    async def size(self, key: str) -> int:
        try:
            head = await self._s3.head_object(Bucket=self._bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404", "NotFound"}:
                raise FileNotFoundError(key) from exc
            raise
        return int(head["ContentLength"])

    async def chunks(self, key: str, first: int, last: int) -> AsyncIterator[bytes]:
        response = await self._s3.get_object(Bucket=self._bucket, Key=key, Range=f"bytes={first}-{last}")
        async with response["Body"] as body:
            while chunk := await body.read(UPLOAD_CHUNK):
                yield chunk

    async def copy(self, source: str, target: str) -> None:
        try:
            await self._s3.copy_object(
                Bucket=self._bucket, Key=target, CopySource={"Bucket": self._bucket, "Key": source}
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404"}:
                raise FileNotFoundError(source) from exc
            raise

    async def delete(self, key: str) -> None:
        await self._s3.delete_object(Bucket=self._bucket, Key=key)

    async def delete_prefix(self, prefix: str) -> None:
        paginator = self._s3.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self._bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                await self._s3.delete_object(Bucket=self._bucket, Key=item["Key"])


async def read_bytes(media: MediaStore, key: str) -> bytes:
    """A small object's bytes (an image, a CSV); FileNotFoundError when it is gone."""
    with tempfile.TemporaryDirectory(prefix="shenava-media-") as directory:
        target = Path(directory) / "object"
        await media.download(key, target)
        return target.read_bytes()
