"""The embedded stack: nats-server (JetStream) and SeaweedFS (master, volume, filer, S3) on
loopback, each a supervised child: restarted when it exits, killed and restarted when its health
check keeps failing.

``EmbeddedStack(settings).start()`` writes the configuration (``infra.stack_config``: generated
credentials, TLS, nothing readable by other users), starts both processes, waits until a client
with the credentials reaches JetStream and a signed S3 write succeeds (creating the media and
state buckets), and returns the completed settings. ``endpoints.json`` in the data dir is what
``load_settings()`` and every other process read.

Layout under ``data_dir`` (mode 0700)::

    endpoints.json     endpoints and credentials (generated once, kept across restarts)
    nats/              nats.conf (user and password) and the JetStream store
    seaweedfs/         volumes; master/ (raft state, and the filer's leveldb metadata store)
    seaweedfs-conf/    weed's working directory: security.toml, tls/, jwt-keys.json,
                       notification.toml, s3.json, local sockets
    logs/              nats-server.log, weed.log (0600)

With ``nats=False`` only SeaweedFS is started (the NATS URL in the settings is someone else's:
a cluster in a test, or a deployment's).
"""

from __future__ import annotations

import asyncio
import contextlib
import stat
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType

from functions.common.settings import Settings
from infra.children import Child, Health, Supervised
from infra.ports import free_port, free_port_settings
from infra.probes import jetstream_ready, s3_ready
from infra.processes import log_tail
from infra.stack_config import (
    GRPC_PORT_OFFSET,
    StackPaths,
    endpoints,
    nats_command,
    read_endpoints,
    seaweed_role_ports,
    stack_secrets,
    weed_command,
    write_configuration,
)

__all__ = [
    "EmbeddedStack",
    "StackError",
    "free_port",
    "free_port_settings",
    "read_endpoints",
    "stack_secrets",
]

READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0  # weed needs ~16 s: its filer waits 15 s for gRPC streams to close
HEALTH_INTERVAL_S = 5.0
MAX_FAILED_STARTS = 3


class StackError(RuntimeError):
    """A stack process failed to start or to become ready."""


async def wait_ready(
    check: Callable[[], Awaitable[bool]], part: Supervised, timeout_s: float = READY_TIMEOUT_S
) -> None:
    """Poll ``check`` until it holds; the part is restarted meanwhile if it exits, but one that
    keeps exiting (a broken configuration, a port in use) fails the start at once."""
    deadline = time.monotonic() + timeout_s
    child = part.child
    starts = child.starts
    while not await check():
        if time.monotonic() > deadline or child.starts > starts + MAX_FAILED_STARTS:
            raise StackError(f"{child.name} is not ready:\n{log_tail(child.log_path)}")
        await asyncio.sleep(0.2)


class EmbeddedStack:
    """nats-server and SeaweedFS as supervised children; ``start()`` returns completed Settings."""

    def __init__(
        self,
        settings: Settings,
        stop_timeout_s: float = STOP_TIMEOUT_S,
        nats_monitor_port: int | None = None,
        nats: bool = True,
    ) -> None:
        self._base = settings
        self._nats_monitor_port = nats_monitor_port
        self._with_nats = nats
        self._paths = StackPaths(settings.data_dir.resolve())
        self._stop_timeout_s = stop_timeout_s
        self.secrets = stack_secrets(settings)
        self.endpoints = endpoints(settings, self.secrets)
        if not nats:
            self.endpoints["nats_url"] = settings.nats_url  # the cluster's, not ours
        self.settings = settings.model_copy(update=self._settings_update())
        self.nats = Supervised(self._child("nats-server", nats_command(self._paths), self._nats_ready))
        weed = weed_command(self.settings, self._paths)
        self.weed = Supervised(self._child("weed", weed, self._s3_ready, cwd=self._paths.seaweedfs_conf))

    def _settings_update(self) -> dict[str, str]:
        return {key: value for key, value in self.endpoints.items() if key in Settings.model_fields}

    def _child(self, name: str, argv: list[str], check: Callable[[], Awaitable[bool]],
               cwd: Path | None = None) -> Child:  # fmt: skip
        health = Health(check, interval_s=HEALTH_INTERVAL_S, failures=6, grace_s=READY_TIMEOUT_S)
        return Child(name, argv, self._paths.logs, health=health, cwd=cwd)

    async def _nats_ready(self) -> bool:
        return await jetstream_ready(self.settings.nats_url)

    async def _s3_ready(self) -> bool:
        return await s3_ready(self.settings)

    @property
    def logs_dir(self) -> Path:
        return self._paths.logs

    async def start(self) -> Settings:
        try:
            write_configuration(
                self.settings, self._paths, self.secrets, self.endpoints, self._nats_monitor_port
            )
            starting = [self.start_weed()] + ([self.start_nats()] if self._with_nats else [])
            await asyncio.gather(*starting)
        except BaseException:
            await self.stop()
            raise
        return self.settings

    async def start_nats(self) -> None:
        """Start nats-server alone (``start()`` does it; tests use it after ``stop_nats()``)."""
        self.nats.start()
        await wait_ready(self._nats_ready, self.nats)

    async def start_weed(self) -> None:
        self.weed.start()
        await wait_ready(self._s3_ready, self.weed)

    async def stop(self) -> None:
        """Stop SeaweedFS first (it may still be sending events), then nats-server."""
        try:
            await self.stop_weed()
        finally:
            await self.stop_nats()

    async def stop_weed(self) -> None:
        await self.weed.stop(self._stop_timeout_s)
        _remove_grpc_sockets(self.settings)

    async def stop_nats(self) -> None:
        """Stop nats-server alone: an outage that SeaweedFS's webhook retries ride out."""
        await self.nats.stop(self._stop_timeout_s)

    async def __aenter__(self) -> Settings:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


def _remove_grpc_sockets(settings: Settings) -> None:
    """weed also serves gRPC on /tmp/seaweedfs-<role>-grpc-<port>.sock (not configurable; mode
    0700 under the stack's umask, so other users cannot connect) and leaves some behind."""
    for role, port in seaweed_role_ports(settings).items():
        path = Path("/tmp") / f"seaweedfs-{role}-grpc-{port + GRPC_PORT_OFFSET}.sock"
        with contextlib.suppress(OSError):
            if stat.S_ISSOCK(path.lstat().st_mode):
                path.unlink()
