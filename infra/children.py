"""Supervised child processes: restarted when they exit, killed and restarted when they stop
answering their health check.

Every part of ``make up`` is a ``Child``: nats-server, weed, the bridge, the reconciler, the
function workers and the API. ``Child.run(stop)`` keeps one process alive until ``stop`` is set:

1. start it (stdout and stderr to ``<logs>/<name>.log``, mode 0600);
2. wait for it to exit, or — with a ``Health`` check — for the check to fail ``failures`` times
   in a row once the process has been healthy (or its start-up ``grace_s`` has passed): then it
   is killed, since a process that is alive but not answering serves nobody;
3. restart it after an exponential backoff that resets once it has stayed up a while.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from infra.processes import log_tail, spawn, terminate

log = logging.getLogger("shenava.supervisor")

CHILD_STOP_TIMEOUT_S = 15.0  # a worker finishes the message in hand on SIGTERM
UNHEALTHY_KILL_TIMEOUT_S = 5.0  # an unresponsive process gets SIGKILL after this


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


@dataclass(frozen=True)
class Health:
    """How to tell that a running child still does its job."""

    check: Callable[[], Awaitable[bool]]
    interval_s: float = 5.0
    failures: int = 6  # consecutive failed checks before the child is killed
    grace_s: float = 120.0  # from a start: failures count only after the first success or this
    timeout_s: float = 5.0  # one check


class Child:
    """One supervised child process, restarted until ``stop`` is set."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        logs_dir: Path,
        backoff: Backoff | None = None,
        health: Health | None = None,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.argv = argv
        self.log_path = logs_dir / f"{name}.log"
        self.backoff = backoff or Backoff()
        self.health = health
        self.cwd = cwd
        self.env = env
        self.process: asyncio.subprocess.Process | None = None
        self.starts = 0

    @property
    def pid(self) -> int | None:
        running = self.process is not None and self.process.returncode is None
        return self.process.pid if running and self.process is not None else None

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                started = loop.time()
                process = await self._start()
                ended = asyncio.ensure_future(self._until_ended(process))
                await asyncio.wait({ended, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if stop.is_set():
                    ended.cancel()  # the process itself is stopped by stop(), in order
                    return
                delay = self._exited(ended.result(), loop.time() - started)
                await asyncio.wait({stopping}, timeout=delay)
        finally:
            stopping.cancel()

    async def _start(self) -> asyncio.subprocess.Process:
        env = {**(self.env if self.env is not None else os.environ), "PYTHONUNBUFFERED": "1"}
        self.process = await spawn(self.argv, self.log_path, cwd=self.cwd, env=env)
        self.starts += 1
        extra = {"child": self.name, "pid": self.process.pid, "log": str(self.log_path)}
        log.info("child started", extra=extra)
        return self.process

    async def _until_ended(self, process: asyncio.subprocess.Process) -> int:
        """The exit status; a process that fails its health check is killed first."""
        if self.health is None:
            return await process.wait()
        watch = asyncio.ensure_future(self._until_unhealthy(self.health))
        exited = asyncio.ensure_future(process.wait())
        try:
            await asyncio.wait({watch, exited}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            watch.cancel()
        if not exited.done():
            log.warning("child unhealthy, killing it", extra={"child": self.name, "pid": process.pid})
            await terminate(process, UNHEALTHY_KILL_TIMEOUT_S)
        return await exited

    async def _until_unhealthy(self, health: Health) -> None:
        loop = asyncio.get_running_loop()
        counting_from = loop.time() + health.grace_s
        failed = 0
        while failed < health.failures:
            await asyncio.sleep(health.interval_s)
            if await _passes(health):
                failed, counting_from = 0, loop.time()
            elif loop.time() >= counting_from:
                failed += 1

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


async def _passes(health: Health) -> bool:
    try:
        return await asyncio.wait_for(health.check(), health.timeout_s)
    except Exception:
        return False


class Supervised:
    """A ``Child`` run in the background under its own stop switch: start, stop, start again."""

    def __init__(self, child: Child) -> None:
        self.child = child
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._stop = asyncio.Event()
            self._task = asyncio.create_task(self.child.run(self._stop), name=f"supervise-{self.child.name}")

    async def stop(self, timeout_s: float = CHILD_STOP_TIMEOUT_S) -> None:
        """Stop restarting it, then stop the process (SIGTERM, then SIGKILL after ``timeout_s``).

        Cancelled while waiting for the restart loop, it still stops the process, then lets the
        cancellation through (a caller's ``asyncio.timeout`` must see it)."""
        self._stop.set()
        try:
            if self._task is not None:
                await asyncio.gather(self._task, return_exceptions=True)
        finally:
            self._task = None
            await self.child.stop(timeout_s)
