"""Child processes for the embedded stack and the supervisor: start with a log file, stop politely.

Children run in their own session, so a Ctrl-C in the terminal reaches only the parent, which
then stops them in order. On Linux they also get SIGTERM if the parent dies (PR_SET_PDEATHSIG),
so a killed supervisor or test run leaves nothing behind. They run with umask 077: what they
create (JetStream files, SeaweedFS volumes, weed's gRPC sockets in /tmp) is theirs alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import os
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from functions.common.redact import redact

PR_SET_PDEATHSIG = 1


def _child_setup() -> Callable[[], None]:
    """What runs in the child before it executes: a private umask, and on Linux SIGTERM when
    the parent dies."""
    prctl = None
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        prctl = libc.prctl  # resolved in the parent: the child only makes the call

    def setup() -> None:
        os.umask(0o077)
        if prctl is not None:
            prctl(PR_SET_PDEATHSIG, signal.SIGTERM)

    return setup


_CHILD_SETUP = _child_setup()


def venv_executable(name: str) -> str:
    """An executable from this interpreter's bin directory (where pip put nats-server, weed)."""
    candidate = Path(sys.executable).parent / name
    if not candidate.exists():
        raise FileNotFoundError(f"{name} not found next to {sys.executable}; pip install it")
    return str(candidate)


async def spawn(
    argv: Sequence[str],
    log_path: Path,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> asyncio.subprocess.Process:
    """Start ``argv`` with stdout and stderr appended to ``log_path`` (readable by this user only)."""
    with open_private_log(log_path) as log:
        stamp = datetime.now(UTC).isoformat()
        log.write(f"--- {stamp} starting: {redact(' '.join(argv))}\n".encode())
        log.flush()
        return await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            start_new_session=True,
            preexec_fn=_CHILD_SETUP,
        )


def open_private_log(log_path: Path) -> BinaryIO:
    """``log_path`` for appending, mode 0600 (also when an older file was made wider), in a
    folder only this user may enter: logs name tenants, jobs and URLs."""
    log_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    log_path.parent.chmod(0o700)
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.fchmod(fd, 0o600)
    return os.fdopen(fd, "ab")


async def terminate(process: asyncio.subprocess.Process, timeout_s: float) -> int:
    """SIGTERM, wait up to ``timeout_s``, then SIGKILL; return the exit status."""
    if process.returncode is not None:
        return process.returncode
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGTERM)
    try:
        return await asyncio.wait_for(process.wait(), timeout_s)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        return await process.wait()


def log_tail(log_path: Path, lines: int = 20) -> str:
    """The last lines of a log, for error messages when a child fails to start."""
    if not log_path.exists():
        return ""
    with log_path.open("rb") as log:
        log.seek(0, os.SEEK_END)
        log.seek(max(0, log.tell() - 16384))
        text = log.read().decode(errors="replace")
    return "\n".join(text.splitlines()[-lines:])
