"""The media store on real SeaweedFS: an object's size and a byte range of it, read as sent."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiobotocore.session import get_session

from functions.common.bootstrap import s3_client_args
from functions.common.media_store import S3MediaStore
from functions.common.settings import Settings


@pytest.fixture
async def media(stack_settings: Settings) -> AsyncIterator[S3MediaStore]:
    client: Any
    async with get_session().create_client("s3", **s3_client_args(stack_settings)) as client:
        yield S3MediaStore(client, stack_settings.media_bucket)


async def test_a_range_is_read_from_the_bucket_and_a_missing_object_is_not_found(media: S3MediaStore) -> None:
    body = bytes(range(256)) * 4096  # 1 MiB: more than one read
    await media.put_bytes("ranges/one.bin", body, "application/octet-stream")
    assert await media.size("ranges/one.bin") == len(body)
    middle = b"".join([chunk async for chunk in media.chunks("ranges/one.bin", 1000, 700_000)])
    assert middle == body[1000:700_001]
    with pytest.raises(FileNotFoundError):
        await media.size("ranges/none.bin")
