"""The embedded stack is locked down on loopback too: without the generated secrets, another local
user can neither read the event stream nor reach SeaweedFS's internals, and the secrets and logs
are readable by their owner only. Each refusal is shown beside the same call made with the
secret, so a test cannot pass merely because the call is broken."""

from __future__ import annotations

import asyncio
import os
import ssl
import stat
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from aiobotocore.session import get_session

from functions.common.bootstrap import s3_client_args
from infra.processes import venv_executable
from infra.stack import EmbeddedStack
from infra.stack_config import GRPC_PORT_OFFSET, StackPaths

SHELL_WAIT_S = 12.0  # without the secret weed shell never gets an answer; with it, it needs ~2 s


async def test_nats_refuses_anonymous_and_wrong_credentials(embedded_stack: EmbeddedStack) -> None:
    settings = embedded_stack.settings
    for url in (
        f"nats://127.0.0.1:{settings.nats_port}",
        f"nats://shenava:wrong@127.0.0.1:{settings.nats_port}",
    ):
        with pytest.raises(nats.errors.Error, match="Authorization Violation"):
            await nats.connect(url, allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=2)
    nc = await nats.connect(settings.nats_url)  # the generated credentials
    try:
        assert (await nc.jetstream().stream_info(settings.stream_name)).config.name == settings.stream_name
    finally:
        await nc.close()


async def weed_shell(settings: Any, cwd: Path, command: str) -> str:
    process = await asyncio.create_subprocess_exec(
        venv_executable("weed"), "shell", f"-master=127.0.0.1:{settings.seaweed_master_port}",
        f"-filer=127.0.0.1:{settings.seaweed_filer_port}", cwd=cwd, env={**os.environ, "HOME": str(cwd)},
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        output, _ = await asyncio.wait_for(process.communicate(f"{command}\nexit\n".encode()), SHELL_WAIT_S)
    except TimeoutError:
        process.kill()
        output, _ = await process.communicate()
    return output.decode(errors="replace")


async def test_weed_shell_cannot_list_the_buckets_without_the_stack_certificate(
    embedded_stack: EmbeddedStack, tmp_path: Path
) -> None:
    settings = embedded_stack.settings
    async with get_session().create_client("s3", **s3_client_args(settings)) as s3:
        await s3.put_object(Bucket=settings.state_bucket, Key="keys/lockdown-probe.json", Body=b"{}")
    listing = f"fs.ls -l /buckets/{settings.state_bucket}/keys"
    conf = StackPaths(settings.data_dir.resolve()).seaweedfs_conf  # holds security.toml and the certificate
    outsider, owner = await asyncio.gather(
        weed_shell(settings, tmp_path, listing), weed_shell(settings, conf, listing)
    )
    assert "lockdown-probe.json" in owner, owner[-2000:]
    assert "lockdown-probe.json" not in outsider, outsider[-2000:]


async def test_the_volume_server_wants_a_client_certificate(embedded_stack: EmbeddedStack) -> None:
    settings = embedded_stack.settings
    tls = StackPaths(settings.data_dir.resolve()).tls
    url = f"https://127.0.0.1:{settings.seaweed_volume_port}/status"
    async with httpx.AsyncClient(timeout=5) as http:
        plain = await http.get(f"http://127.0.0.1:{settings.seaweed_volume_port}/status")
        assert plain.status_code == 400 and "HTTPS" in plain.text
    async with httpx.AsyncClient(timeout=5, verify=False) as http:
        with pytest.raises((httpx.HTTPError, ssl.SSLError)):  # TLS: "certificate required"
            await http.get(url)
    context = ssl.create_default_context(cafile=str(tls.ca))
    context.check_hostname = False
    context.load_cert_chain(str(tls.cert), str(tls.key))
    async with httpx.AsyncClient(timeout=5, verify=context) as http:
        assert (await http.get(url)).status_code == 200


def test_secrets_logs_and_sockets_are_the_owners_alone(embedded_stack: EmbeddedStack) -> None:
    settings = embedded_stack.settings
    paths = StackPaths(settings.data_dir.resolve())
    private_files = [
        settings.endpoints_file, paths.nats_conf, paths.seaweedfs_conf / "security.toml",
        paths.seaweedfs_conf / "jwt-keys.json", paths.seaweedfs_conf / "s3.json", paths.tls.key,
        *paths.logs.glob("*.log"),
    ]  # fmt: skip
    modes = {str(path): oct(stat.S_IMODE(path.stat().st_mode)) for path in private_files}
    assert set(modes.values()) == {"0o600"}, modes
    for folder in (paths.data_dir, paths.logs, paths.seaweedfs_conf, paths.nats):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    for role in ("master", "volume", "filer", "s3"):  # weed's local gRPC sockets: nobody else may connect
        port = getattr(settings, "s3_port" if role == "s3" else f"seaweed_{role}_port") + GRPC_PORT_OFFSET
        socket = Path(f"/tmp/seaweedfs-{role}-grpc-{port}.sock")
        assert not socket.exists() or stat.S_IMODE(socket.stat().st_mode) & 0o077 == 0, socket
