"""``make up`` for real, for tests that kill its parts: ``python -m infra.supervisor`` as a child
process in a temporary data dir on free loopback ports, with its own embedded stack, bridge,
reconciler, workers and API.

Tests read which process is which from the supervisor's own log ("child started", with the
child's name and pid), wait on readiness probes (every ``/healthz``, JetStream with the generated
credentials), and on the webhook receiver for results: never on time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from functions.common.settings import Settings, load_settings
from infra.ports import free_port, free_port_settings, port_is_free
from infra.probes import http_ok, jetstream_ready

REPO = Path(__file__).resolve().parents[2]
WORKERS = ["ingest", "transcribe", "notify"]
START_TIMEOUT_S = 240.0
STOP_TIMEOUT_S = 90.0

# Quick retries, as in the pipeline fixture; a lost upload is looked for after a few seconds.
TUNING: dict[str, Any] = {
    "workers": WORKERS, "outbound_allowlist": "127.0.0.0/8", "ack_wait_s": 10.0,
    "retry_backoff_s": [0.5, 1.0, 2.0], "notify_backoff_s": [0.5, 1.0, 1.0, 2.0, 2.0, 4.0, 4.0, 8.0],
    "callback_challenge_timeout_s": 5.0, "reconcile_after_s": 5.0, "reconcile_interval_s": 2.0,
    "rate_limit_per_minute": 0, "api_processes": 1,
}  # fmt: skip


def metrics_base_port(count: int) -> int:
    """A first port with ``count`` free ports from it on."""
    while True:
        base = free_port()
        if all(port_is_free("127.0.0.1", base + offset) for offset in range(1, count)):
            return base


@dataclass
class MakeUp:
    data_dir: Path
    settings: Settings = field(init=False)
    process: asyncio.subprocess.Process | None = None

    def __post_init__(self) -> None:
        base = metrics_base_port(len(WORKERS) + 1)
        self.settings = free_port_settings(self.data_dir, metrics_base_port=base, **TUNING)
        self.log = self.data_dir / "supervisor.log"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SHENAVA_")}
        env.update(HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
        fields = ["data_dir", "bind_host", "api_host", "secret_key", "metrics_base_port", "nats_port",
                  "bridge_port", "api_port", "s3_port", "seaweed_master_port", "seaweed_volume_port",
                  "seaweed_filer_port", *TUNING]  # fmt: skip
        dumped = self.settings.model_dump(mode="json")
        for name in fields:
            value = dumped[name]
            env[f"SHENAVA_{name.upper()}"] = value if isinstance(value, str) else json.dumps(value)
        return env

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.api_port}"

    def live_settings(self) -> Settings:
        """What its processes use: the generated credentials included."""
        return load_settings(data_dir=self.data_dir)

    async def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "infra.supervisor", cwd=REPO, env=self.env(),
                stdout=out, stderr=asyncio.subprocess.STDOUT,
            )  # fmt: skip
        await asyncio.wait_for(self.ready(), START_TIMEOUT_S)

    async def ready(self) -> None:
        """Every part answers: JetStream, the API, each worker's and the reconciler's /healthz."""
        base = self.settings.metrics_base_port
        urls = [f"{self.api_url}/healthz"] + [
            f"http://127.0.0.1:{base + n}/healthz" for n in range(len(WORKERS) + 1)
        ]
        while True:
            assert self.process is not None and self.process.returncode is None, self.tail()
            endpoints = self.data_dir / "endpoints.json"
            if endpoints.exists() and await jetstream_ready(self.live_settings().nats_url):
                answers = await asyncio.gather(*(http_ok(url, timeout_s=2) for url in urls))
                if all(answers):
                    return
            await asyncio.sleep(0.5)

    def pids(self) -> dict[str, int]:
        """The latest pid of each child, from the supervisor's log."""
        found: dict[str, int] = {}
        for line in self.log.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if entry.get("message") == "child started":
                    found[entry["child"]] = int(entry["pid"])
        return found

    def kill(self, child: str) -> int:
        pid = self.pids()[child]
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        return pid

    async def restarted(self, child: str, old_pid: int) -> None:
        while self.pids().get(child) == old_pid:
            await asyncio.sleep(0.2)

    async def stop(self) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), STOP_TIMEOUT_S)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
        assert self.process.returncode == 0, self.tail()

    def tail(self, lines: int = 40) -> str:
        return (
            "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:]) if self.log.exists() else ""
        )

    def api_key(self) -> str:
        return (self.data_dir / "dev-api-key").read_text().strip()


async def completed_on_stream(settings: Settings) -> dict[str, int]:
    """How many ``job.completed`` events the stream holds per job (the audit log)."""
    import nats

    from events.bus import nats_servers
    from events.models import parse_event
    from events.subjects import JOB_COMPLETED

    counts: dict[str, int] = defaultdict(int)
    nc = await nats.connect(nats_servers(settings.nats_url))
    try:
        sub = await nc.jetstream().subscribe(JOB_COMPLETED, ordered_consumer=True)
        while True:
            msg = await sub.next_msg(timeout=10)
            counts[str(getattr(parse_event(msg.data), "job_id", ""))] += 1
            if msg.metadata.num_pending == 0:
                return counts
    finally:
        await nc.close()
