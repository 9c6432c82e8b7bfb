"""Free loopback ports, for tests and benchmarks that run a private stack beside others."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

from functions.common.settings import Settings
from infra.stack_config import GRPC_PORT_OFFSET


class NoFreePort(RuntimeError):
    pass


def port_is_free(host: str, port: int) -> bool:
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
        if grpc and not port_is_free(host, port + GRPC_PORT_OFFSET):
            continue
        taken.update(wanted)
        return port
    raise NoFreePort("no free port pair found")


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
