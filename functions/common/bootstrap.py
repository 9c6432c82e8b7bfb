"""One bootstrap builds every client a function or the API needs; entrypoints only call it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

from functions.common.asr import AsrEngine
from functions.common.bus import Bus, PollingBus, bus_for
from functions.common.clock import utcnow
from functions.common.jobs import JobRepository
from functions.common.media_store import MediaStore, S3MediaStore
from functions.common.outbound import outbound_client
from functions.common.secrets import SecretBox
from functions.common.settings import Settings
from functions.common.state_store import S3StateStore, StateStore


@dataclass
class Deps:
    """Everything a handler may touch. Tests build one with in-memory fakes."""

    settings: Settings
    state: StateStore
    media: MediaStore
    http: httpx.AsyncClient
    secrets: SecretBox
    bus: Bus = field(default_factory=PollingBus)  # the API's way to the functions (workers: their runner)
    clock: Callable[[], datetime] = utcnow
    engine: AsrEngine | None = None  # loaded by the transcribe worker only

    @property
    def jobs(self) -> JobRepository:
        return JobRepository(self.state)


def s3_client_args(settings: Settings) -> dict[str, Any]:
    return {
        "endpoint_url": settings.s3_endpoint_url or None,
        "aws_access_key_id": settings.s3_access_key or None,
        "aws_secret_access_key": settings.s3_secret_key or None,
        "region_name": settings.s3_region,
        "config": AioConfig(
            s3={"addressing_style": "path"},
            retries={"max_attempts": 5, "mode": "standard"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    }


@asynccontextmanager
async def bootstrap(settings: Settings, **overrides: Any) -> AsyncIterator[Deps]:
    """Build the clients for ``settings``; keyword overrides replace any ``Deps`` field."""
    async with AsyncExitStack() as stack:
        if "state" not in overrides or "media" not in overrides:
            s3 = await stack.enter_async_context(
                get_session().create_client("s3", **s3_client_args(settings))
            )
            overrides.setdefault("state", S3StateStore(s3, settings.state_bucket))
            overrides.setdefault("media", S3MediaStore(s3, settings.media_bucket))
        if "http" not in overrides:
            http = outbound_client(settings.outbound_allowlist, settings.callback_timeout_s)
            overrides["http"] = await stack.enter_async_context(http)
        overrides.setdefault("secrets", SecretBox(settings.secret_key))
        if "bus" not in overrides:
            overrides["bus"] = await _bus(settings, stack)
        yield Deps(settings=settings, **overrides)


async def _bus(settings: Settings, stack: AsyncExitStack) -> Bus:
    """NATS when configured (connected on first use), else SNS on AWS, else a bus that can only wait."""
    sns = None
    if not settings.nats_url and settings.events_topic_arn:
        from functions.common.lambda_entry import aws_client_args

        sns = await stack.enter_async_context(get_session().create_client("sns", **aws_client_args(settings)))
    bus = bus_for(settings, sns)
    stack.push_async_callback(bus.close)
    return bus
