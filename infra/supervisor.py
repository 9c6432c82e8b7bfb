"""``python -m infra.supervisor``: the whole of Shenava on one machine, in one command.

Stages:

1. Without external S3 and NATS endpoints in the environment, start the embedded stack
   (nats-server + SeaweedFS, ``infra.stack``) and the SeaweedFS → NATS bridge.
2. Start the function workers (``functions.ingest``, ``functions.transcribe``,
   ``functions.notify``, ``functions.train``) as child processes, each logging to
   ``<data_dir>/logs/<name>.log``.
3. Make sure a development API key exists, start the API, and print how to call it.
4. Restart any child that exits, with exponential backoff that resets once it has stayed up.
5. On Ctrl-C or SIGTERM: stop the API, then the workers, then the bridge (SIGTERM, wait,
   SIGKILL), then the stack; exit 0.

The supervisor's own log is JSON lines on stderr; the banner goes to stdout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

from functions.common.logs import configure_logging
from functions.common.settings import Settings, load_settings
from infra.processes import log_tail, spawn, terminate
from infra.stack import EmbeddedStack, StackError

log = logging.getLogger("shenava.supervisor")

CHILD_STOP_TIMEOUT_S = 15.0  # a worker finishes the message in hand on SIGTERM
WORKERS = ("ingest", "transcribe", "notify", "train")


@dataclass
class Backoff:
    """Exponential restart delays; a child that stayed up ``stable_after_s`` starts over."""

    initial_s: float = 1.0
    maximum_s: float = 60.0
    stable_after_s: float = 30.0
    _next_s: float = field(default=0.0, init=False)

    def after_exit(self, uptime_s: float) -> float:
        if uptime_s >= self.stable_after_s or self._next_s == 0.0:
            self._next_s = self.initial_s
        delay = self._next_s
        self._next_s = min(self._next_s * 2, self.maximum_s)
        return delay


class Child:
    """One supervised child process, restarted until ``stop`` is set."""

    def __init__(self, name: str, argv: list[str], logs_dir: Path, backoff: Backoff | None = None) -> None:
        self.name = name
        self.argv = argv
        self.log_path = logs_dir / f"{name}.log"
        self.backoff = backoff or Backoff()
        self.process: asyncio.subprocess.Process | None = None

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                started = loop.time()
                process = await self._start()
                exited = asyncio.ensure_future(process.wait())
                await asyncio.wait({exited, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if stop.is_set():
                    exited.cancel()  # the process itself is stopped by stop(), in order
                    return
                delay = self._exited(exited.result(), loop.time() - started)
                await asyncio.wait({stopping}, timeout=delay)
        finally:
            stopping.cancel()

    async def _start(self) -> asyncio.subprocess.Process:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = await spawn(self.argv, self.log_path, env=env)
        extra = {"child": self.name, "pid": self.process.pid, "log": str(self.log_path)}
        log.info("child started", extra=extra)
        return self.process

    def _exited(self, returncode: int, uptime_s: float) -> float:
        delay = self.backoff.after_exit(uptime_s)
        extra = {
            "child": self.name,
            "returncode": returncode,
            "uptime_s": round(uptime_s, 1),
            "restart_in_s": delay,
            "log": log_tail(self.log_path, lines=5),
        }
        log.warning("child exited", extra=extra)
        return delay

    async def stop(self, timeout_s: float = CHILD_STOP_TIMEOUT_S) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        returncode = await terminate(self.process, timeout_s)
        log.info("child stopped", extra={"child": self.name, "returncode": returncode})


def python_module(module: str) -> list[str]:
    return [sys.executable, "-m", module]


def wants_embedded_stack() -> bool:
    return load_settings().embedded


async def ensure_dev_api_key(settings: Settings) -> Path | None:
    """The development key file, created if missing; None (and a log line) if that failed."""
    try:
        from functions.common.apikeys import ensure_dev_key

        await ensure_dev_key(settings)
    except Exception:
        log.exception("could not create the development API key")
        return None
    return settings.data_dir / "dev-api-key"


def banner(settings: Settings, key_path: Path | None) -> str:
    lines = [f"Shenava API: {settings.base_url}"]
    if key_path is not None:
        lines += [
            f"Development API key: {key_path.read_text().strip()}  (kept in {key_path})",
            "Try:",
            f'  curl -H "Authorization: Bearer $(cat {key_path})" {settings.base_url}/v1/recognitions',
        ]
    lines.append("Logs: " + str(settings.data_dir / "logs") + "   Stop: Ctrl-C")
    return "\n".join(lines)


class Supervisor:
    """Starts the stack and the children, then stops everything in order when asked."""

    def __init__(self, stop: asyncio.Event) -> None:
        self.stop = stop
        self.stack: EmbeddedStack | None = None
        self.bridge: Child | None = None
        self.workers: list[Child] = []
        self.api: Child | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def run(self) -> None:
        settings = load_settings()
        if wants_embedded_stack():
            self.stack = EmbeddedStack(settings)
            settings = await self.stack.start()
            log.info("embedded stack ready", extra={"log": str(self.stack.logs_dir)})
        if self.stop.is_set():  # Ctrl-C while the stack was starting
            return
        logs_dir = settings.data_dir / "logs"
        if self.stack is not None:
            self.bridge = self._launch("bridge", "infra.bridge", logs_dir)
        self.workers = [self._launch(name, f"functions.{name}", logs_dir) for name in WORKERS]
        key_path = await ensure_dev_api_key(settings)
        self.api = self._launch("api", "functions.api", logs_dir)
        print(banner(settings, key_path), flush=True)
        await self.stop.wait()

    def _launch(self, name: str, module: str, logs_dir: Path) -> Child:
        child = Child(name, python_module(module), logs_dir)
        self._tasks.append(asyncio.create_task(child.run(self.stop), name=f"supervise-{name}"))
        return child

    async def shutdown(self) -> None:
        self.stop.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.api is not None:
            await self.api.stop()
        await asyncio.gather(*(worker.stop() for worker in self.workers))
        if self.bridge is not None:
            await self.bridge.stop()
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
