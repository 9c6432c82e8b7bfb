"""No secret in any log line, and log files only their owner can read."""

from __future__ import annotations

import json
import logging
import stat
import sys
from pathlib import Path

import pytest

from functions.common.logs import JsonFormatter
from infra.processes import spawn

SECRET = "ThisIsMySecret123"


def formatted(logger: str, message: str, *args: object, exc: BaseException | None = None) -> str:
    record = logging.getLogger(logger).makeRecord(
        logger, logging.INFO, __file__, 1, message, args, (type(exc), exc, None) if exc else None
    )
    return JsonFormatter().format(record)


def test_the_access_log_keeps_the_path_but_not_the_user_secret() -> None:
    path = f"/v1/register_callback?callback_url=https%3A%2F%2Fexample.org%2Fr&user_secret={SECRET}&x=1"
    line = formatted("uvicorn.access", '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5", "POST", path, "1.1", 201)
    assert SECRET not in line
    message = json.loads(line)["message"]
    assert "callback_url=https%3A%2F%2Fexample.org%2Fr&user_secret=[REDACTED]&x=1" in message


@pytest.mark.parametrize(
    "text",
    [
        f"headers: {{'Authorization': 'Bearer {SECRET}'}}",
        f"Authorization: Token {SECRET}",
        f"Authorization: Basic {SECRET}",
        f"connecting to nats://shenava:{SECRET}@127.0.0.1:4222",
        f"GET /x?token={SECRET} and X-Amz-Signature={SECRET}",
        f"key shv_{SECRET}{SECRET}",
    ],
)
def test_credentials_are_masked_in_messages_and_exceptions(text: str) -> None:
    assert SECRET not in formatted("shenava.test", "%s", text)
    assert SECRET not in formatted("shenava.test", "failed", exc=RuntimeError(text))


async def test_child_logs_are_private_even_when_an_older_file_was_not(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "child.log"
    log.parent.mkdir()
    log.write_text("old\n")
    log.chmod(0o644)
    process = await spawn([sys.executable, "-c", "print('hello')", f"--password={SECRET}"], log)
    await process.wait()
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    assert stat.S_IMODE(log.parent.stat().st_mode) == 0o700
    assert "hello" in log.read_text() and SECRET not in log.read_text()
