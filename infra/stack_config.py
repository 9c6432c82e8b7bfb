"""What the embedded stack writes before it starts anything: secrets, endpoints, command lines and
configuration files for nats-server and SeaweedFS. Locked down by default, on loopback too:

- **NATS** requires a user and password, generated on first start; clients get them inside the
  NATS URL in ``endpoints.json`` (mode 0600). The server reads them from ``nats/nats.conf``
  (0600), never from its command line, which any local user can read in ``ps``.
- **SeaweedFS**: S3 requests must be signed with the generated identity; every gRPC port
  (master, volume, filer, S3) takes only clients holding a certificate from the stack's own CA
  (mutual TLS), so ``weed shell`` cannot list the buckets without it; the volume server speaks
  HTTPS with client certificates too, and writes and reads carry JWTs signed with generated
  keys (``security.toml``). The master's and the filer's HTTP APIs are off.

Every secret lives in the data dir, readable by its owner only, and is kept across restarts.
"""

from __future__ import annotations

import json
import os
import secrets
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from functions.common.media_store import INCOMING, UPLOADS
from functions.common.settings import Settings
from infra.processes import venv_executable
from infra.tls import TlsFiles

GRPC_PORT_OFFSET = 10000  # SeaweedFS's convention: each gRPC port is its HTTP port + 10000
VOLUME_SIZE_LIMIT_MB = 1024
MAX_VOLUMES = 100
WEBHOOK_PATH = "/seaweedfs/events"
NATS_USER = "shenava"


@dataclass(frozen=True)
class StackSecrets:
    s3_access_key: str
    s3_secret_key: str
    bridge_token: str
    nats_password: str


@dataclass(frozen=True)
class StackPaths:
    data_dir: Path

    @property
    def nats(self) -> Path:
        return self.data_dir / "nats"

    @property
    def nats_conf(self) -> Path:
        return self.nats / "nats.conf"

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
    def tls(self) -> TlsFiles:
        return TlsFiles(self.seaweedfs_conf / "tls")

    @property
    def logs(self) -> Path:
        return self.data_dir / "logs"


# --- secrets and endpoints ------------------------------------------------------------------


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
        nats_password=stored.get("nats_password") or secrets.token_urlsafe(32),
    )


def nats_url(host: str, port: int, password: str) -> str:
    return f"nats://{NATS_USER}:{quote(password, safe='')}@{host}:{port}"


def endpoints(settings: Settings, creds: StackSecrets) -> dict[str, str]:
    """What clients need, keyed like ``Settings`` fields (plus the secrets the stack keeps)."""
    host = settings.bind_host
    return {
        "s3_endpoint_url": f"http://{host}:{settings.s3_port}",
        "s3_access_key": creds.s3_access_key,
        "s3_secret_key": creds.s3_secret_key,
        "s3_region": settings.s3_region,
        "media_bucket": settings.media_bucket,
        "state_bucket": settings.state_bucket,
        "nats_url": nats_url(host, settings.nats_port, creds.nats_password),
        "nats_password": creds.nats_password,
        "bridge_token": creds.bridge_token,
    }


def write_private(path: Path, text: str) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    path.chmod(0o600)  # an older file may have been created with wider permissions


# --- nats-server ----------------------------------------------------------------------------


def nats_config(settings: Settings, paths: StackPaths, password: str, monitor_port: int | None = None) -> str:
    """JetStream on disk, loopback, one user; no HTTP monitoring unless a ``monitor_port`` is asked for."""
    user = f"{{ user: {json.dumps(NATS_USER)}, password: {json.dumps(password)} }}"
    lines = [
        f"listen: {json.dumps(f'{settings.bind_host}:{settings.nats_port}')}",
        "server_name: shenava",  # a stable name instead of a new random one per start
        f"jetstream {{ store_dir: {json.dumps(str(paths.nats))} }}",
        f"authorization {{ users = [ {user} ] }}",
    ]
    if monitor_port:
        lines.append(f"http: {json.dumps(f'{settings.bind_host}:{monitor_port}')}")
    return "\n".join(lines) + "\n"


def nats_command(paths: StackPaths) -> list[str]:
    return [venv_executable("nats-server"), "-c", str(paths.nats_conf)]


# --- SeaweedFS ------------------------------------------------------------------------------


def seaweed_role_ports(settings: Settings) -> dict[str, int]:
    return {
        "master": settings.seaweed_master_port,
        "volume": settings.seaweed_volume_port,
        "filer": settings.seaweed_filer_port,
        "s3": settings.s3_port,
    }


def weed_command(settings: Settings, paths: StackPaths) -> list[str]:
    """``weed server`` (master, volume, filer, S3); it reads security.toml and
    notification.toml from its working directory, ``paths.seaweedfs_conf``."""
    conf = paths.seaweedfs_conf
    host = settings.bind_host
    ports = []
    for role, port in seaweed_role_ports(settings).items():
        ports += [f"-{role}.port={port}", f"-{role}.port.grpc={port + GRPC_PORT_OFFSET}"]
    return [
        venv_executable("weed"), "server", f"-ip={host}", f"-ip.bind={host}",
        f"-dir={paths.seaweedfs}", f"-master.dir={paths.seaweedfs_master}", *ports,
        "-master.telemetry=false",
        "-master.electionTimeout=2s",  # one master: a restart need not wait 10+ s to elect itself
        f"-master.volumeSizeLimitMB={VOLUME_SIZE_LIMIT_MB}",
        "-disableHttp",  # the master's HTTP API: everything inside weed talks gRPC
        f"-volume.max={MAX_VOLUMES}",
        "-volume.preStopSeconds=0",  # one node: nobody to drain traffic to before stopping
        "-filer", "-filer.disableHttp",  # no unauthenticated filer HTTP API or UI next to S3
        f"-filer.localSocket={conf / 'filer.sock'}",
        "-s3", f"-s3.config={conf / 's3.json'}", f"-s3.localSocket={conf / 's3.sock'}",
        "-s3.iam=false", "-s3.port.iceberg=0", "-s3.port.lance=0", "-s3.autoCreateBucket=false",
    ]  # fmt: skip


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


def weed_jwt_keys(paths: StackPaths) -> dict[str, str]:
    """The JWT signing keys of the volume server and the filer, made once."""
    path = paths.seaweedfs_conf / "jwt-keys.json"
    if path.exists():
        return {str(k): str(v) for k, v in json.loads(path.read_text()).items()}
    keys = {name: secrets.token_urlsafe(32) for name in ("write", "read", "filer_write", "filer_read")}
    write_private(path, json.dumps(keys))
    return keys


def security_toml(paths: StackPaths) -> str:
    """mTLS on every gRPC port and on the volume server's HTTP; JWTs for volume and filer."""
    tls = paths.tls.ensure()
    keys = weed_jwt_keys(paths)
    pair = f"cert = {json.dumps(str(tls.cert))}\nkey = {json.dumps(str(tls.key))}"
    sections = [
        f'[jwt.signing]\nkey = "{keys["write"]}"\nexpires_after_seconds = 10',
        f'[jwt.signing.read]\nkey = "{keys["read"]}"\nexpires_after_seconds = 10',
        f'[jwt.filer_signing]\nkey = "{keys["filer_write"]}"\nexpires_after_seconds = 10',
        f'[jwt.filer_signing.read]\nkey = "{keys["filer_read"]}"\nexpires_after_seconds = 10',
        "[access]\nui = false",
        f"[grpc]\nca = {json.dumps(str(tls.ca))}",
        *(f"[grpc.{role}]\n{pair}" for role in ("master", "volume", "filer", "s3", "client")),
        f"[https.client]\nenabled = true\n{pair}\nca = {json.dumps(str(tls.ca))}",
        f"[https.volume]\n{pair}\nca = {json.dumps(str(tls.ca))}",
    ]
    return "\n\n".join(sections) + "\n"


def bridge_url(settings: Settings) -> str:
    return f"http://{settings.bind_host}:{settings.bridge_port}{WEBHOOK_PATH}"


def notification_toml(settings: Settings, token: str) -> str:
    """The filer webhook: only files under the media prefixes ingest handles."""
    prefixes = [f"/buckets/{settings.media_bucket}/{prefix}" for prefix in (UPLOADS, INCOMING)]
    # Events wait in weed's memory only: retry as long as SeaweedFS allows (~5 min) so that a
    # restarting bridge or nats-server loses nothing; what a weed restart loses, the
    # reconciler finds again (infra/reconciler.py).
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


def write_configuration(settings: Settings, paths: StackPaths, creds: StackSecrets, known: dict[str, str],
                        nats_monitor_port: int | None = None) -> None:  # fmt: skip
    """Every file the stack's processes read, each readable by this user only; ``known``: the
    endpoints clients read."""
    paths.data_dir.mkdir(parents=True, exist_ok=True)
    paths.data_dir.chmod(0o700)
    for folder in (paths.nats, paths.seaweedfs_master, paths.seaweedfs_conf):
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_private(settings.endpoints_file, json.dumps(known, indent=2) + "\n")
    write_private(paths.nats_conf, nats_config(settings, paths, creds.nats_password, nats_monitor_port))
    conf = paths.seaweedfs_conf
    write_private(conf / "s3.json", json.dumps(s3_identities(creds), indent=2))
    write_private(conf / "notification.toml", notification_toml(settings, creds.bridge_token))
    write_private(conf / "security.toml", security_toml(paths))
