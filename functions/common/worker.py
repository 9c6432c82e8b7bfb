"""The few lines every NATS worker entrypoint shares: settings, bootstrap, connect, run.

``python -m functions.<name> [--burst]``; SIGTERM/SIGINT finish the message in hand, then exit.
Every worker serves ``/healthz`` and ``/metrics`` on ``SHENAVA_METRICS_HOST``:``SHENAVA_METRICS_PORT``
(0: a port the OS picks, logged) while it runs.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from events.bus import connect
from events.runner import FunctionSpec, Runner
from functions.common.bootstrap import bootstrap
from functions.common.logs import configure_logging
from functions.common.observability import ObservabilityServer
from functions.common.settings import Settings, load_settings


async def serve(
    spec: FunctionSpec,
    settings: Settings,
    burst: bool = False,
    stop: asyncio.Event | None = None,
    **overrides: Any,
) -> None:
    stop = stop or asyncio.Event()
    async with bootstrap(settings, **overrides) as deps:
        health = WorkerHealth(spec.consumer.durable)
        observability = ObservabilityServer(settings.metrics_host, settings.metrics_port, health.status)
        await observability.start()
        try:
            nc, js = await connect(settings, name=f"shenava-{spec.consumer.durable}")
            health.runner = Runner(spec, deps, nc, js)
            try:
                await health.runner.run(stop=stop, burst=burst)
            finally:
                await nc.drain()
        finally:
            await observability.close()


@dataclass
class WorkerHealth:
    """``/healthz``: ok while the runner's loop is up; whether the bus is reachable, for people."""

    function: str
    runner: Runner | None = None

    def status(self) -> dict[str, object]:
        up = self.runner is not None and self.runner.running
        connected = up and self.runner is not None and self.runner.nc.is_connected
        return {"status": "ok" if up else "starting", "function": self.function,
                "bus": "connected" if connected else "away"}  # fmt: skip


def main(spec: FunctionSpec, prepare: Callable[[Settings], dict[str, Any]] | None = None) -> None:
    parser = argparse.ArgumentParser(prog=f"python -m functions.{spec.consumer.durable}")
    parser.add_argument("--burst", action="store_true", help="exit when nothing is pending")
    args = parser.parse_args()
    settings = load_settings()
    configure_logging(settings.log_level)
    overrides = prepare(settings) if prepare else {}
    run_until_signalled(lambda stop: serve(spec, settings, burst=args.burst, stop=stop, **overrides))


def run_until_signalled(serve_until: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run a process's service until SIGTERM or SIGINT sets its stop event (it then finishes the
    work in hand and returns)."""

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve_until(stop)

    asyncio.run(run())
