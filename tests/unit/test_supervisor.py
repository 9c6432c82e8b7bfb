"""The supervisor's restart policy, and a supervised child restarted and stopped for real."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from infra.stack import free_port_settings
from infra.supervisor import Backoff, Child, banner


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
