"""``python -m infra.supervisor``: the whole of Shenava on one machine, in one command.

Stages:

1. Without external S3 and NATS endpoints in the environment, start the embedded stack
   (nats-server + SeaweedFS, ``infra.stack``, each supervised with a health check) and the
   SeaweedFS → NATS bridge.
2. Start the reconciler (``infra.reconciler``: media whose event was lost is announced again)
   and the function workers (``SHENAVA_WORKERS``: ingest, transcribe, notify, train by default),
   each serving ``/healthz`` and ``/metrics`` on a port from ``SHENAVA_METRICS_BASE_PORT`` on.
3. Make sure a development API key exists, start the API (``SHENAVA_API_PROCESSES`` processes
   sharing its port, each health-checked on its own metrics port when there are several), and
   print how to call it.
4. Every child is supervised the same way (``infra.children``): restarted when it exits, with
   exponential backoff that resets once it has stayed up, and killed and restarted when its
   health check fails six times in a row.
5. On Ctrl-C or SIGTERM: stop the API, then the workers and the reconciler, then the bridge
   (SIGTERM, wait, SIGKILL), then the stack; exit 0.

Each child logs to ``<data_dir>/logs/<name>.log`` (0600). The supervisor's own log is JSON lines
on stderr; the banner goes to stdout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections import Counter
from pathlib import Path

from functions.common.logs import configure_logging
from functions.common.settings import Settings, load_settings
from infra.children import Backoff, Child, Health, Supervised
from infra.probes import http_ok
from infra.stack import EmbeddedStack, StackError

__all__ = ["Backoff", "Child", "Supervisor", "banner", "supervise"]

log = logging.getLogger("shenava.supervisor")


def python_module(module: str) -> list[str]:
    return [sys.executable, "-m", module]


def loopback(host: str) -> str:
    return "127.0.0.1" if host in {"0.0.0.0", "", "::"} else host


def http_health(url: str) -> Health:
    async def check() -> bool:
        return await http_ok(url)

    return Health(check)


def worker_names(workers: list[str]) -> list[str]:
    """One name per process: ``transcribe``, ``transcribe-2``, … when a function is repeated."""
    seen: Counter[str] = Counter()
    names = []
    for worker in workers:
        seen[worker] += 1
        names.append(worker if seen[worker] == 1 else f"{worker}-{seen[worker]}")
    return names


async def ensure_dev_api_key(settings: Settings) -> Path | None:
    """The development key file, created if missing; None (and a log line) if that failed."""
    try:
        from functions.common.apikeys import ensure_dev_key

        await ensure_dev_key(settings)
    except Exception:
        log.exception("could not create the development API key")
        return None
    return settings.data_dir / "dev-api-key"


def banner(settings: Settings, key_path: Path | None, metrics: dict[str, int] | None = None) -> str:
    lines = [f"Shenava API: {settings.base_url}"]
    if key_path is not None:
        lines += [
            f"Development API key: {key_path.read_text().strip()}  (kept in {key_path})",
            "Try:",
            f'  curl -H "Authorization: Bearer $(cat {key_path})" {settings.base_url}/v1/recognitions',
        ]
    if metrics:
        host = loopback(settings.metrics_host)
        lines.append(
            "Metrics: " + ", ".join(f"{name} http://{host}:{port}/metrics" for name, port in metrics.items())
        )
    lines.append("Logs: " + str(settings.data_dir / "logs") + "   Stop: Ctrl-C")
    return "\n".join(lines)


class Supervisor:
    """Starts the stack and the children, then stops everything in order when asked."""

    def __init__(self, stop: asyncio.Event) -> None:
        self.stop = stop
        self.stack: EmbeddedStack | None = None
        self.children: dict[str, Supervised] = {}
        self.metrics_ports: dict[str, int] = {}

    async def run(self) -> None:
        settings = load_settings()
        if settings.embedded:
            self.stack = EmbeddedStack(settings)
            settings = await self.stack.start()
            log.info("embedded stack ready", extra={"log": str(self.stack.logs_dir)})
        if self.stop.is_set():  # Ctrl-C while the stack was starting
            return
        logs = settings.data_dir / "logs"
        if self.stack is not None:
            bridge = f"http://{settings.bind_host}:{settings.bridge_port}/healthz"
            self._launch(Child("bridge", python_module("infra.bridge"), logs, health=http_health(bridge)))
        modules = {"reconciler": "infra.reconciler"} | {
            name: f"functions.{worker}"
            for name, worker in zip(worker_names(settings.workers), settings.workers, strict=True)
        }
        for offset, (name, module) in enumerate(modules.items()):
            self._launch_serving(name, module, settings, settings.metrics_base_port + offset)
        key_path = await ensure_dev_api_key(settings)
        self._launch_api(settings, settings.metrics_base_port + len(modules))
        print(banner(settings, key_path, self.metrics_ports), flush=True)
        await self.stop.wait()

    def _launch_api(self, settings: Settings, port: int) -> None:
        """The API; with several processes (``SHENAVA_API_PROCESSES``) all on its port, each
        health-checked on its own metrics port from ``port`` on."""
        count = settings.api_process_count
        if count > 1:
            for offset, name in enumerate(worker_names(["api"] * count)):
                self._launch_serving(name, "functions.api", settings, port + offset)
            return
        api = f"http://{loopback(settings.api_host)}:{settings.api_port}/healthz"
        logs = settings.data_dir / "logs"
        self._launch(Child("api", python_module("functions.api"), logs, health=http_health(api)))

    def _launch_serving(self, name: str, module: str, settings: Settings, port: int) -> None:
        """A child with ``/healthz`` and ``/metrics`` on ``port``."""
        env = {**os.environ, "SHENAVA_METRICS_PORT": str(port)}
        health = http_health(f"http://{loopback(settings.metrics_host)}:{port}/healthz")
        self._launch(Child(name, python_module(module), settings.data_dir / "logs", health=health, env=env))
        self.metrics_ports[name] = port

    def _launch(self, child: Child) -> None:
        supervised = Supervised(child)
        supervised.start()
        self.children[child.name] = supervised

    def pids(self) -> dict[str, int | None]:
        """Every supervised process by name (the stack's too), for operators and tests."""
        found = {name: part.child.pid for name, part in self.children.items()}
        if self.stack is not None:
            found |= {"nats-server": self.stack.nats.child.pid, "weed": self.stack.weed.child.pid}
        return found

    async def shutdown(self) -> None:
        self.stop.set()
        apis = [self.children.pop(name) for name in list(self.children) if name.split("-")[0] == "api"]
        bridge = self.children.pop("bridge", None)
        await asyncio.gather(*(api.stop() for api in apis))
        await asyncio.gather(*(child.stop() for child in self.children.values()))
        if bridge is not None:
            await bridge.stop()
        if self.stack is not None:
            await self.stack.stop()
        log.info("stopped")


async def supervise() -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    supervisor = Supervisor(stop)
    status = 0
    try:
        await supervisor.run()
    except StackError:
        log.exception("the embedded stack did not start")
        status = 1
    finally:
        with contextlib.suppress(Exception):
            await supervisor.shutdown()
    return status


def main() -> None:
    configure_logging(os.environ.get("SHENAVA_LOG_LEVEL", "INFO"))
    sys.exit(asyncio.run(supervise()))


if __name__ == "__main__":
    main()
