"""The supervisor's restart policy, and a supervised child restarted and stopped for real."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from infra.children import Health, Supervised
from infra.stack import free_port_settings
from infra.supervisor import Backoff, Child, banner, worker_names


def test_backoff_doubles_up_to_the_maximum_and_resets_after_a_stable_run() -> None:
    backoff = Backoff(initial_s=1.0, maximum_s=5.0, stable_after_s=30.0)
    assert [backoff.after_exit(uptime_s=0.1) for _ in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert backoff.after_exit(uptime_s=31.0) == 1.0
    assert backoff.after_exit(uptime_s=0.1) == 2.0


async def starts(child: Child, count: int, timeout_s: float = 10.0) -> None:
    async def enough() -> None:
        while not child.log_path.exists() or child.log_path.read_text().count("starting:") < count:
            await asyncio.sleep(0.02)

    await asyncio.wait_for(enough(), timeout_s)


async def test_a_crashing_child_is_restarted_until_stopped(tmp_path: Path) -> None:
    crash = [sys.executable, "-c", "raise SystemExit(3)"]
    child = Child("crasher", crash, tmp_path, Backoff(initial_s=0.01, maximum_s=0.05))
    stop = asyncio.Event()
    task = asyncio.create_task(child.run(stop))
    await starts(child, 3)
    stop.set()
    await asyncio.wait_for(task, 5)
    await child.stop()


async def test_a_running_child_is_stopped_with_sigterm(tmp_path: Path) -> None:
    sleeper = [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(60)"]
    child = Child("sleeper", sleeper, tmp_path)
    stop = asyncio.Event()
    task = asyncio.create_task(child.run(stop))
    await starts(child, 1)
    stop.set()
    await asyncio.wait_for(task, 5)
    await child.stop(timeout_s=5)
    assert child.process is not None
    assert child.process.returncode == -15


def test_banner_shows_the_api_the_key_file_and_a_curl(tmp_path: Path) -> None:
    settings = free_port_settings(tmp_path)
    (tmp_path / "dev-api-key").write_text("shv_example\n")
    text = banner(settings, tmp_path / "dev-api-key")
    assert settings.base_url in text
    assert "Development API key: shv_example" in text
    assert f'curl -H "Authorization: Bearer $(cat {tmp_path / "dev-api-key"})"' in text
    assert f"{settings.base_url}/v1/recognitions" in text


async def test_a_child_that_stops_answering_its_health_check_is_killed_and_restarted(tmp_path: Path) -> None:
    """Alive but useless (here: it answers its first check only) → killed, started again."""
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    checks: list[int] = []

    async def answers_once() -> bool:
        checks.append(1)
        return len(checks) == 1

    health = Health(answers_once, interval_s=0.02, failures=3, grace_s=30.0)
    child = Child("hung", sleeper, tmp_path, Backoff(initial_s=0.01), health=health)
    stop = asyncio.Event()
    task = asyncio.create_task(child.run(stop))
    await starts(child, 1)
    first = child.process
    await starts(child, 2)
    assert first is not None and first.returncode == -15  # stopped by us, though it never exited itself
    assert len(checks) >= 4  # healthy once, then three failures counted at once (no grace after health)
    stop.set()
    await asyncio.wait_for(task, 5)
    await child.stop(timeout_s=5)


async def test_a_supervised_child_can_be_stopped_and_started_again(tmp_path: Path) -> None:
    part = Supervised(Child("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"], tmp_path))
    part.start()
    await starts(part.child, 1)
    pid = part.child.pid
    await part.stop(timeout_s=5)
    assert part.child.pid is None
    part.start()
    await starts(part.child, 2)
    assert part.child.pid not in (None, pid)
    await part.stop(timeout_s=5)


async def test_a_cancelled_stop_is_not_swallowed_and_still_stops_the_process(
    tmp_path: Path,
) -> None:
    class Stubborn(Child):
        """Sees the stop switch and goes on anyway; records that its process was stopped."""

        def __init__(self) -> None:
            super().__init__("stubborn", [sys.executable, "-c", "pass"], tmp_path)
            self.saw_stop = asyncio.Event()
            self.process_stopped = False

        async def run(self, stop: asyncio.Event) -> None:
            await stop.wait()
            self.saw_stop.set()
            await asyncio.Event().wait()

        async def stop(self, timeout_s: float = 5.0) -> None:
            self.process_stopped = True

    child = Stubborn()
    part = Supervised(child)
    part.start()
    stopping = asyncio.create_task(part.stop())
    await child.saw_stop.wait()
    stopping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopping  # the cancellation is not swallowed
    assert child.process_stopped


def test_repeated_workers_get_their_own_names() -> None:
    assert worker_names(["ingest", "transcribe", "transcribe", "notify"]) == [
        "ingest", "transcribe", "transcribe-2", "notify"
    ]  # fmt: skip
