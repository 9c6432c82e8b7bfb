"""Connecting to NATS, declaring the stream and consumers, publishing events."""

from __future__ import annotations

import nats
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import NotFoundError

from events.config import StreamSettings
from events.models import Event, encode_event
from events.subjects import ALL_SUBJECTS, ConsumerSpec

DUPLICATE_WINDOW_S = 120.0


async def connect(settings: StreamSettings, name: str = "shenava") -> tuple[NATS, JetStreamContext]:
    nc = await nats.connect(settings.nats_url, name=name, max_reconnect_attempts=-1, reconnect_time_wait=0.5)
    js = nc.jetstream()
    await ensure_stream(js, settings)
    return nc, js


async def ensure_stream(js: JetStreamContext, settings: StreamSettings) -> None:
    config = StreamConfig(
        name=settings.stream_name,
        subjects=ALL_SUBJECTS,
        storage=StorageType.FILE,
        retention=RetentionPolicy.LIMITS,
        max_age=settings.stream_max_age_days * 86400,
        duplicate_window=DUPLICATE_WINDOW_S,
    )
    try:
        await js.stream_info(settings.stream_name)
        await js.update_stream(config)
    except NotFoundError:
        await js.add_stream(config)


def consumer_config(spec: ConsumerSpec, settings: StreamSettings) -> ConsumerConfig:
    return ConsumerConfig(
        durable_name=spec.durable,
        filter_subjects=list(spec.subjects),
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL,
        ack_wait=settings.ack_wait_s,
        max_deliver=settings.max_deliver,
        max_ack_pending=1000,
    )


async def publish_event(js: JetStreamContext, event: Event) -> None:
    """Publish with the event id as ``Nats-Msg-Id``: a repeat inside the window is dropped."""
    await js.publish(event.subject, encode_event(event), headers={"Nats-Msg-Id": event.id})
