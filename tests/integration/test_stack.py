"""The embedded stack for real: S3 writes become NATS events, credentials are enforced, data stays.

Events are awaited on a NATS subscription with a deadline, never slept for.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import nats
import pytest
from aiobotocore.session import get_session
from botocore.exceptions import ClientError
from nats.aio.msg import Msg

from events.models import ObjectCreated, parse_event
from events.subjects import OBJECT_CREATED
from functions.common.bootstrap import s3_client_args
from functions.common.settings import Settings
from infra.stack import EmbeddedStack, read_endpoints, stack_secrets

EVENT_TIMEOUT_S = 30.0


@pytest.fixture
async def s3(stack_settings: Settings) -> AsyncIterator[Any]:
    async with get_session().create_client("s3", **s3_client_args(stack_settings)) as client:
        yield client


class Created:
    """Object-created events seen on NATS since the subscription was made."""

    def __init__(self) -> None:
        self.events: list[tuple[ObjectCreated, dict[str, str]]] = []
        self._changed = asyncio.Condition()

    async def on_message(self, msg: Msg) -> None:
        event = parse_event(msg.data)
        if isinstance(event, ObjectCreated):
            async with self._changed:
                self.events.append((event, dict(msg.headers or {})))
                self._changed.notify_all()

    async def wait_for(self, key: str) -> tuple[ObjectCreated, dict[str, str]]:
        def found() -> tuple[ObjectCreated, dict[str, str]] | None:
            return next((seen for seen in self.events if seen[0].key == key), None)

        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: found() is not None), EVENT_TIMEOUT_S)
        result = found()
        assert result is not None
        return result

    def keys(self) -> list[str]:
        return [event.key for event, _ in self.events]


@asynccontextmanager
async def watching(settings: Settings) -> AsyncIterator[Created]:
    created = Created()
    nc = await nats.connect(settings.nats_url)
    try:
        await nc.subscribe(OBJECT_CREATED, cb=created.on_message)
        await nc.flush()  # subscribed on the server before the test writes anything
        yield created
    finally:
        await nc.close()


@pytest.fixture
async def created(stack_settings: Settings) -> AsyncIterator[Created]:
    async with watching(stack_settings) as seen:
        yield seen


async def test_s3_put_arrives_on_nats_as_object_created(
    stack_settings: Settings, s3: Any, created: Created
) -> None:
    body = b"RIFF" + bytes(range(256)) * 4
    key = "incoming/b1/a b.wav"
    put = await s3.put_object(Bucket=stack_settings.media_bucket, Key=key, Body=body)

    event, headers = await created.wait_for(key)

    md5 = hashlib.md5(body).hexdigest()
    assert put["ETag"].strip('"') == md5
    assert (event.bucket, event.key, event.size, event.etag, event.source) == (
        stack_settings.media_bucket,
        key,
        len(body),
        md5,
        "seaweedfs",
    )
    assert event.id == event.dedupe_key == f"{stack_settings.media_bucket}/{key}@{md5}"
    assert headers["Nats-Msg-Id"] == event.id


async def test_multipart_upload_with_non_ascii_key_carries_the_s3_etag(
    stack_settings: Settings, s3: Any, created: Created
) -> None:
    bucket, key = stack_settings.media_bucket, "uploads/acme/job1/ضبط صدا é.mp3"
    upload = await s3.create_multipart_upload(Bucket=bucket, Key=key)
    parts = []
    for number, body in ((1, b"a" * 5 * 1024 * 1024), (2, b"b" * 1000)):
        part = await s3.upload_part(
            Bucket=bucket, Key=key, UploadId=upload["UploadId"], PartNumber=number, Body=body
        )
        parts.append({"PartNumber": number, "ETag": part["ETag"]})
    done = await s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload["UploadId"], MultipartUpload={"Parts": parts}
    )

    event, _ = await created.wait_for(key)

    assert event.etag == done["ETag"].strip('"')
    assert event.etag.endswith("-2")
    assert event.size == 5 * 1024 * 1024 + 1000


async def test_only_ingest_prefixes_of_the_media_bucket_reach_the_bridge(
    stack_settings: Settings, s3: Any, created: Created
) -> None:
    media, state = stack_settings.media_bucket, stack_settings.state_bucket
    await s3.put_object(Bucket=state, Key="incoming/b1/state.wav", Body=b"not media")
    await s3.put_object(Bucket=media, Key="normalized/t/job.wav", Body=b"made by ingest")
    await s3.put_object(Bucket=media, Key="elsewhere/x.wav", Body=b"outside the prefixes")
    await s3.put_object(Bucket=media, Key="incoming/b1/marker.wav", Body=b"marker")

    # The filtered writes were queued before the marker; had they passed the filter,
    # they would have been delivered with it or before it.
    await created.wait_for("incoming/b1/marker.wav")
    assert created.keys() == ["incoming/b1/marker.wav"]


async def test_an_event_written_during_a_nats_outage_arrives_once_nats_is_back(
    embedded_stack: EmbeddedStack, s3: Any
) -> None:
    settings = embedded_stack.settings
    key = "incoming/b7/during-outage.wav"
    await embedded_stack.stop_nats()
    try:
        # The bridge cannot publish: it answers 5xx and SeaweedFS retries with backoff.
        await s3.put_object(Bucket=settings.media_bucket, Key=key, Body=b"outage")
    finally:
        await embedded_stack.start_nats()

    nc = await nats.connect(settings.nats_url)
    try:
        # Read the stream from the start: the event may have landed before we subscribed.
        sub = await nc.jetstream().subscribe(OBJECT_CREATED, ordered_consumer=True)

        async def stored() -> ObjectCreated:
            while True:
                event = parse_event((await sub.next_msg(timeout=EVENT_TIMEOUT_S)).data)
                if isinstance(event, ObjectCreated) and event.key == key:
                    return event

        event = await asyncio.wait_for(stored(), EVENT_TIMEOUT_S)
    finally:
        await nc.close()
    assert event.etag == hashlib.md5(b"outage").hexdigest()


async def test_anonymous_and_wrongly_signed_puts_are_refused(stack_settings: Settings) -> None:
    url = f"{stack_settings.s3_endpoint_url}/{stack_settings.media_bucket}/incoming/b1/anon.wav"
    async with httpx.AsyncClient() as http:
        anonymous = await http.put(url, content=b"anonymous")
    assert anonymous.status_code == 403

    for access, secret in (
        (stack_settings.s3_access_key, "wrong-secret"),
        ("SHVUNKNOWNKEY0000000", stack_settings.s3_secret_key),
    ):
        wrong = stack_settings.model_copy(update={"s3_access_key": access, "s3_secret_key": secret})
        async with get_session().create_client("s3", **s3_client_args(wrong)) as client:
            with pytest.raises(ClientError) as refused:
                await client.put_object(
                    Bucket=stack_settings.media_bucket, Key="incoming/b1/wrong.wav", Body=b"x"
                )
        status = refused.value.response["ResponseMetadata"]["HTTPStatusCode"]
        assert status == 403, refused.value.response["Error"]


async def test_objects_credentials_and_stream_survive_a_restart(
    embedded_stack: EmbeddedStack, s3: Any, created: Created
) -> None:
    settings = embedded_stack.settings
    await s3.put_object(Bucket=settings.media_bucket, Key="incoming/b9/keep.wav", Body=b"kept")
    await created.wait_for("incoming/b9/keep.wav")  # in the stream before we count it
    before = await stream_state(settings)
    endpoints_before = read_endpoints(settings)

    await embedded_stack.stop()
    await embedded_stack.start()

    assert read_endpoints(settings) == endpoints_before
    assert stack_secrets(settings) == embedded_stack.secrets
    assert EmbeddedStack(settings).settings == settings  # what a new process would use
    async with get_session().create_client("s3", **s3_client_args(settings)) as fresh:
        got = await fresh.get_object(Bucket=settings.media_bucket, Key="incoming/b9/keep.wav")
        async with got["Body"] as stream:
            assert await stream.read() == b"kept"
        # Nothing was lost (other tests' workers may have published since: never fewer, never reset).
        messages, last_seq = await stream_state(settings)
        assert messages >= before[0] and last_seq >= before[1]
        assert await stored_message(settings, before[1])
        # The bridge reconnects to the restarted nats-server and still publishes.
        async with watching(settings) as after_restart:
            await fresh.put_object(Bucket=settings.media_bucket, Key="incoming/b9/new.wav", Body=b"new")
            event, _ = await after_restart.wait_for("incoming/b9/new.wav")
    assert event.etag == hashlib.md5(b"new").hexdigest()


async def stored_message(settings: Settings, seq: int) -> bytes:
    nc = await nats.connect(settings.nats_url)
    try:
        return bytes((await nc.jetstream().get_msg(settings.stream_name, seq)).data or b"")
    finally:
        await nc.close()


async def stream_state(settings: Settings) -> tuple[int, int]:
    nc = await nats.connect(settings.nats_url)
    try:
        state = (await nc.jetstream().stream_info(settings.stream_name)).state
        return state.messages, state.last_seq
    finally:
        await nc.close()
