"""The embedded stack: nats-server (JetStream) and SeaweedFS (master, volume, filer, S3) on loopback.

``EmbeddedStack(settings).start()`` launches both from this virtualenv's bin directory, waits until
JetStream answers and a signed S3 write succeeds, creates the media and state buckets, and writes
``<data_dir>/endpoints.json``, which ``load_settings()`` and ``python -m infra.bridge`` read.

Layout under ``data_dir``::

    endpoints.json     endpoints and credentials (generated once, kept across restarts)
    nats/              JetStream store
    seaweedfs/         volumes; master/ (raft state, and the filer's leveldb metadata store)
    seaweedfs-conf/    weed's working directory: notification.toml, s3.json, local sockets
    logs/              nats-server.log, weed.log

SeaweedFS reads ``notification.toml`` from its working directory: its filer webhook posts file
events under the media bucket's ``uploads/`` and ``incoming/`` prefixes to the bridge, which
republishes them on NATS. S3 requests must be signed with the generated identity.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import socket
import stat
import string
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import nats
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError
from cryptography.fernet import Fernet

from functions.common.bootstrap import s3_client_args
from functions.common.media_store import INCOMING, UPLOADS
from functions.common.settings import Settings
from infra.processes import log_tail, spawn, terminate, venv_executable

GRPC_PORT_OFFSET = 10000  # SeaweedFS's convention: each gRPC port is its HTTP port + 10000
VOLUME_SIZE_LIMIT_MB = 1024
MAX_VOLUMES = 100
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0  # weed needs ~16 s: its filer waits 15 s for gRPC streams to close
READY_PROBE_KEY = "_stack/ready"
WEBHOOK_PATH = "/seaweedfs/events"


class StackError(RuntimeError):
    """A stack process failed to start or to become ready."""


@dataclass(frozen=True)
class StackSecrets:
    s3_access_key: str
    s3_secret_key: str
    bridge_token: str


# --- credentials and endpoints --------------------------------------------------------------


def read_endpoints(settings: Settings) -> dict[str, str]:
    path = settings.endpoints_file
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    return {str(key): str(value) for key, value in data.items()}


def _new_access_key() -> str:
    alphabet = string.ascii_uppercase + string.digits
    return "SHV" + "".join(secrets.choice(alphabet) for _ in range(17))


def stack_secrets(settings: Settings) -> StackSecrets:
    """Credentials from settings, else from endpoints.json, else new ones (made once)."""
    stored = read_endpoints(settings)
    return StackSecrets(
        s3_access_key=settings.s3_access_key or stored.get("s3_access_key") or _new_access_key(),
        s3_secret_key=settings.s3_secret_key or stored.get("s3_secret_key") or secrets.token_urlsafe(30),
        bridge_token=stored.get("bridge_token") or secrets.token_urlsafe(32),
    )


def endpoints(settings: Settings, creds: StackSecrets) -> dict[str, str]:
    """What clients need, keyed like ``Settings`` fields (plus the bridge token)."""
    host = settings.bind_host
    return {
        "s3_endpoint_url": f"http://{host}:{settings.s3_port}",
        "s3_access_key": creds.s3_access_key,
        "s3_secret_key": creds.s3_secret_key,
        "s3_region": settings.s3_region,
        "media_bucket": settings.media_bucket,
        "state_bucket": settings.state_bucket,
        "nats_url": f"nats://{host}:{settings.nats_port}",
        "bridge_token": creds.bridge_token,
    }


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    path.chmod(0o600)  # an older file may have been created with wider permissions


# --- command lines and config files ---------------------------------------------------------


@dataclass(frozen=True)
class StackPaths:
    data_dir: Path

    @property
    def nats(self) -> Path:
        return self.data_dir / "nats"

    @property
    def seaweedfs(self) -> Path:
        return self.data_dir / "seaweedfs"

    @property
    def seaweedfs_master(self) -> Path:
        return self.seaweedfs / "master"

    @property
    def seaweedfs_conf(self) -> Path:
        return self.data_dir / "seaweedfs-conf"

    @property
    def logs(self) -> Path:
        return self.data_dir / "logs"


def nats_command(settings: Settings, paths: StackPaths, monitor_port: int | None = None) -> list[str]:
    """No HTTP monitoring endpoint unless a ``monitor_port`` is asked for."""
    monitor = ["-m", str(monitor_port)] if monitor_port else []
    return [
        venv_executable("nats-server"),
        "-js",  # JetStream
        "-sd",
        str(paths.nats),  # file store survives restarts
        "-a",
        settings.bind_host,
        "-p",
        str(settings.nats_port),
        "-n",
        "shenava",  # a stable server name instead of a new random one per start
        *monitor,
    ]


def _seaweed_role_ports(settings: Settings) -> dict[str, int]:
    return {
        "master": settings.seaweed_master_port,
        "volume": settings.seaweed_volume_port,
        "filer": settings.seaweed_filer_port,
        "s3": settings.s3_port,
    }


def _seaweed_ports(settings: Settings) -> list[str]:
    flags = []
    for role, port in _seaweed_role_ports(settings).items():
        flags += [f"-{role}.port={port}", f"-{role}.port.grpc={port + GRPC_PORT_OFFSET}"]
    return flags


def weed_command(settings: Settings, paths: StackPaths) -> list[str]:
    conf = paths.seaweedfs_conf
    host = settings.bind_host
    return [
        venv_executable("weed"),
        "server",
        f"-ip={host}",
        f"-ip.bind={host}",
        f"-dir={paths.seaweedfs}",
        f"-master.dir={paths.seaweedfs_master}",
        *_seaweed_ports(settings),
        "-master.telemetry=false",
        "-master.electionTimeout=2s",  # one master: a restart need not wait 10+ s to elect itself
        f"-master.volumeSizeLimitMB={VOLUME_SIZE_LIMIT_MB}",
        "-disableHttp",  # the master's HTTP API: everything inside weed talks gRPC
        f"-volume.max={MAX_VOLUMES}",
        "-volume.preStopSeconds=0",  # one node: nobody to drain traffic to before stopping
        "-filer",
        "-filer.disableHttp",  # no unauthenticated filer HTTP API or UI next to S3
        f"-filer.localSocket={conf / 'filer.sock'}",
        "-s3",
        f"-s3.config={conf / 's3.json'}",
        f"-s3.localSocket={conf / 's3.sock'}",
        "-s3.iam=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-s3.autoCreateBucket=false",
    ]


def s3_identities(creds: StackSecrets) -> dict[str, Any]:
    """With any identity configured, SeaweedFS refuses anonymous and wrongly signed requests."""
    return {
        "identities": [
            {
                "name": "shenava",
                "credentials": [{"accessKey": creds.s3_access_key, "secretKey": creds.s3_secret_key}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }


def bridge_url(settings: Settings) -> str:
    return f"http://{settings.bind_host}:{settings.bridge_port}{WEBHOOK_PATH}"


def notification_toml(settings: Settings, token: str) -> str:
    """The filer webhook: only files under the media prefixes ingest handles."""
    prefixes = [f"/buckets/{settings.media_bucket}/{prefix}" for prefix in (UPLOADS, INCOMING)]
    # Events wait in memory only: retry as long as SeaweedFS allows (~5 min) so that a
    # restarting bridge or nats-server loses nothing.
    return "\n".join(
        [
            "[notification.webhook]",
            "enabled = true",
            f"endpoint = {json.dumps(bridge_url(settings))}",
            f"bearer_token = {json.dumps(token)}",
            "timeout_seconds = 10",
            "max_retries = 10",
            "backoff_seconds = 1",
            "max_backoff_seconds = 60",
            "workers = 5",
            'event_types = ["create", "update", "rename"]',
            f"path_prefixes = {json.dumps(prefixes)}",
            "",
        ]
    )


def _remove_grpc_sockets(settings: Settings) -> None:
    """weed also serves gRPC on /tmp/seaweedfs-<role>-grpc-<port>.sock (not configurable) and
    leaves some behind when it stops."""
    for role, port in _seaweed_role_ports(settings).items():
        path = Path("/tmp") / f"seaweedfs-{role}-grpc-{port + GRPC_PORT_OFFSET}.sock"
        with contextlib.suppress(OSError):
            if stat.S_ISSOCK(path.lstat().st_mode):
                path.unlink()


# --- readiness ----------------------------------------------------------------------------


async def _poll(
    check: Callable[[], Awaitable[bool]],
    process: asyncio.subprocess.Process,
    what: str,
    log_path: Path,
    timeout_s: float = READY_TIMEOUT_S,
) -> None:
    """Poll ``check`` until it is true; fail early if the process exits."""
    deadline = time.monotonic() + timeout_s
    while not await check():
        if process.returncode is not None:
            raise StackError(f"{what} exited with {process.returncode}:\n{log_tail(log_path)}")
        if time.monotonic() > deadline:
            raise StackError(f"{what} not ready after {timeout_s:.0f} s:\n{log_tail(log_path)}")
        await asyncio.sleep(0.2)


async def _quiet(error: Exception) -> None:
    """Refused connections are expected while polling; nats-py would log each one."""


async def jetstream_ready(nats_url: str) -> bool:
    try:
        nc = await nats.connect(
            nats_url, connect_timeout=1, allow_reconnect=False, max_reconnect_attempts=0, error_cb=_quiet
        )
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
    """Both buckets exist and a signed write to the state bucket succeeds."""
    try:
        async with get_session().create_client("s3", **_probe_client_args(settings)) as s3:
            for bucket in (settings.media_bucket, settings.state_bucket):
                await _ensure_bucket(s3, bucket)
            await s3.put_object(Bucket=settings.state_bucket, Key=READY_PROBE_KEY, Body=b"ok")
            await s3.delete_object(Bucket=settings.state_bucket, Key=READY_PROBE_KEY)
        return True
    except (BotoCoreError, ClientError, OSError):
        return False


# --- the stack ----------------------------------------------------------------------------


class EmbeddedStack:
    """nats-server and SeaweedFS as child processes; ``start()`` returns completed Settings."""

    def __init__(
        self,
        settings: Settings,
        stop_timeout_s: float = STOP_TIMEOUT_S,
        nats_monitor_port: int | None = None,
    ) -> None:
        self._base = settings
        self._nats_monitor_port = nats_monitor_port
        self._paths = StackPaths(settings.data_dir.resolve())
        self._stop_timeout_s = stop_timeout_s
        self._nats: asyncio.subprocess.Process | None = None
        self._weed: asyncio.subprocess.Process | None = None
        self.secrets = stack_secrets(settings)
        self.settings = settings.model_copy(update=self._settings_update())

    def _settings_update(self) -> dict[str, str]:
        known = endpoints(self._base, self.secrets)
        return {key: value for key, value in known.items() if key in Settings.model_fields}

    @property
    def logs_dir(self) -> Path:
        return self._paths.logs

    async def start(self) -> Settings:
        try:
            self._write_config()
            await self.start_nats()
            await self._start_weed()
        except BaseException:
            await self.stop()
            raise
        return self.settings

    def _write_config(self) -> None:
        paths = self._paths
        for folder in (paths.nats, paths.seaweedfs_master, paths.seaweedfs_conf):
            folder.mkdir(parents=True, exist_ok=True)
        settings = self.settings
        _write_private(
            settings.endpoints_file, json.dumps(endpoints(settings, self.secrets), indent=2) + "\n"
        )
        conf = self._paths.seaweedfs_conf
        _write_private(conf / "s3.json", json.dumps(s3_identities(self.secrets), indent=2))
        _write_private(conf / "notification.toml", notification_toml(settings, self.secrets.bridge_token))

    async def start_nats(self) -> None:
        """Start nats-server alone (``start()`` does it; tests use it after ``stop_nats()``)."""
        log = self._paths.logs / "nats-server.log"
        argv = nats_command(self.settings, self._paths, self._nats_monitor_port)
        self._nats = await spawn(argv, log)
        url = self.settings.nats_url
        await _poll(lambda: jetstream_ready(url), self._nats, "nats-server", log)

    async def _start_weed(self) -> None:
        log = self._paths.logs / "weed.log"
        argv = weed_command(self.settings, self._paths)
        self._weed = await spawn(argv, log, cwd=self._paths.seaweedfs_conf)
        settings = self.settings
        await _poll(lambda: s3_ready(settings), self._weed, "SeaweedFS", log)

    async def stop(self) -> None:
        """Stop SeaweedFS first (it may still be sending events), then nats-server."""
        try:
            if self._weed is not None:
                await terminate(self._weed, self._stop_timeout_s)
                self._weed = None
                _remove_grpc_sockets(self.settings)
        finally:
            await self.stop_nats()

    async def stop_nats(self) -> None:
        """Stop nats-server alone: an outage that SeaweedFS's webhook retries ride out."""
        if self._nats is not None:
            await terminate(self._nats, self._stop_timeout_s)
            self._nats = None

    async def __aenter__(self) -> Settings:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


# --- free ports for tests -----------------------------------------------------------------


def _port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1", taken: set[int] | None = None, grpc: bool = False) -> int:
    """A port the OS calls free (and, for SeaweedFS roles, its gRPC port + 10000 too)."""
    taken = taken if taken is not None else set()
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind((host, 0))
            port = int(probe.getsockname()[1])
        wanted = [port, port + GRPC_PORT_OFFSET] if grpc else [port]
        if any(p in taken or p > 65535 for p in wanted):
            continue
        if grpc and not _port_is_free(host, port + GRPC_PORT_OFFSET):
            continue
        taken.update(wanted)
        return port
    raise StackError("no free port pair found")


def free_port_settings(data_dir: Path, host: str = "127.0.0.1", **overrides: Any) -> Settings:
    """Settings for a private stack: free loopback ports, ``data_dir``, empty endpoints and a
    fresh secret key; the environment is overridden for all of these."""
    taken: set[int] = set()
    ports = {
        "nats_port": free_port(host, taken),
        "bridge_port": free_port(host, taken),
        "api_port": free_port(host, taken),
        "s3_port": free_port(host, taken, grpc=True),
        "seaweed_master_port": free_port(host, taken, grpc=True),
        "seaweed_volume_port": free_port(host, taken, grpc=True),
        "seaweed_filer_port": free_port(host, taken, grpc=True),
    }
    blank = {"s3_endpoint_url": "", "s3_access_key": "", "s3_secret_key": "", "nats_url": ""}
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "bind_host": host,
        "api_host": host,
        "secret_key": Fernet.generate_key().decode(),
        **blank,
        **ports,
    }
    return Settings(**{**values, **overrides})
