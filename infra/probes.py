"""Readiness and health checks of the stack's parts: each answers True or False, never raises."""

from __future__ import annotations

import contextlib
from typing import Any

import httpx
import nats
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from events.bus import nats_servers
from functions.common.bootstrap import s3_client_args
from functions.common.settings import Settings

READY_PROBE_KEY = "_stack/ready"


async def _quiet(error: Exception) -> None:
    """Refused connections are expected while polling; nats-py would log each one."""


async def jetstream_ready(url: str) -> bool:
    """A client with these credentials connects and JetStream answers."""
    try:
        nc = await nats.connect(
            nats_servers(url), connect_timeout=1, allow_reconnect=False, max_reconnect_attempts=0,
            error_cb=_quiet,
        )  # fmt: skip
    except (OSError, nats.errors.Error, TimeoutError):
        return False
    try:
        await nc.jetstream().account_info()
        return True
    except (nats.errors.Error, TimeoutError):
        return False
    finally:
        await nc.close()


def _probe_client_args(settings: Settings) -> dict[str, Any]:
    args = s3_client_args(settings)
    # Fail fast while polling: no retries, short timeouts.
    args["config"] = args["config"].merge(
        AioConfig(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=10)
    )
    return args


async def _ensure_bucket(s3: Any, bucket: str) -> None:
    try:
        await s3.head_bucket(Bucket=bucket)
    except ClientError:
        with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
            await s3.create_bucket(Bucket=bucket)


async def s3_ready(settings: Settings) -> bool:
    """Both buckets exist (made if missing) and a signed write to the state bucket succeeds."""
    try:
        async with get_session().create_client("s3", **_probe_client_args(settings)) as s3:
            for bucket in (settings.media_bucket, settings.state_bucket):
                await _ensure_bucket(s3, bucket)
            await s3.put_object(Bucket=settings.state_bucket, Key=READY_PROBE_KEY, Body=b"ok")
            await s3.delete_object(Bucket=settings.state_bucket, Key=READY_PROBE_KEY)
        return True
    except (BotoCoreError, ClientError, OSError):
        return False


async def http_ok(url: str, timeout_s: float = 5.0) -> bool:
    """``GET url`` answers 200 (a ``/healthz``)."""
    try:
        async with httpx.AsyncClient(timeout=timeout_s, trust_env=False) as http:
            return (await http.get(url)).status_code == 200
    except httpx.HTTPError:
        return False
