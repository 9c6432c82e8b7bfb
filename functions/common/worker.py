"""The few lines every NATS worker entrypoint shares: settings, bootstrap, connect, run.

``python -m functions.<name> [--burst]``; SIGTERM/SIGINT finish the message in hand, then exit.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Callable
from typing import Any

from events.bus import connect
from events.runner import FunctionSpec, Runner
from functions.common.bootstrap import bootstrap
from functions.common.logs import configure_logging
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
        nc, js = await connect(settings, name=f"shenava-{spec.consumer.durable}")
        try:
            await Runner(spec, deps, nc, js).run(stop=stop, burst=burst)
        finally:
            await nc.drain()


def main(spec: FunctionSpec, prepare: Callable[[Settings], dict[str, Any]] | None = None) -> None:
    parser = argparse.ArgumentParser(prog=f"python -m functions.{spec.consumer.durable}")
    parser.add_argument("--burst", action="store_true", help="exit when nothing is pending")
    args = parser.parse_args()
    settings = load_settings()
    configure_logging(settings.log_level)
    overrides = prepare(settings) if prepare else {}

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve(spec, settings, burst=args.burst, stop=stop, **overrides)

    asyncio.run(run())
