"""Connecting to NATS, declaring the stream and consumers, publishing events.

``nats_url`` may list several servers, comma-separated (the members of a cluster, each with its
credentials): the client connects to one and fails over to the others, and learns the rest of
the cluster from the server it reached. The stream is stored on ``stream_replicas`` servers
(1 for the embedded single server, 3 on a cluster); consumers inherit the stream's replicas.
"""

from __future__ import annotations

import logging

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

log = logging.getLogger("shenava.bus")


def nats_servers(url: str) -> list[str]:
    """``nats://a:4222,nats://b:4222`` → each server URL."""
    return [part.strip() for part in url.split(",") if part.strip()]


async def _bus_error(error: Exception) -> None:
    """One line per connection error (nats-py's default logs a traceback for every reconnect try)."""
    log.warning("event bus: %r", error)


async def connect(settings: StreamSettings, name: str = "shenava") -> tuple[NATS, JetStreamContext]:
    nc = await nats.connect(
        nats_servers(settings.nats_url), name=name, max_reconnect_attempts=-1, reconnect_time_wait=0.5,
        error_cb=_bus_error,
    )  # fmt: skip
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
        num_replicas=settings.stream_replicas,
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
