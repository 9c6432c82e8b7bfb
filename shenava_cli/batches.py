"""``shenava batch``: the drop folder. ``push`` writes a directory's files to
``incoming/<batch>/`` in the media bucket over S3 (a ``_config.json`` first when a language or
speaker labels are asked for); ``watch`` follows the batch's files until all are finished;
``results`` fetches the TRD batch API's ZIP and unpacks it."""

from __future__ import annotations

import asyncio
import io
import json
import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Group
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn
from rich.table import Table

from shenava_cli.client import FINISHED, Api
from shenava_cli.errors import CliError, ExitCode
from shenava_cli.storage import Endpoints, s3_call

BATCH_NAME = re.compile(r"^[\w][\w.-]{0,199}$")
CONFIG_NAME = "_config.json"
POLL_S = 1.0


def check_batch_name(name: str) -> str:
    if not BATCH_NAME.match(name):
        raise CliError(f"{name!r} is not a batch name (letters, digits, '.', '-', '_')", ExitCode.USAGE)
    return name


def files_to_push(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise CliError(f"{folder} is not a directory", ExitCode.USAGE)
    found = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith((".", "_")))
    if not found:
        raise CliError(f"{folder} holds no files to push", ExitCode.USAGE)
    return found


def batch_config(language: str | None, speakers: bool) -> dict[str, Any]:
    config: dict[str, Any] = {}
    if language:
        config["language"] = language
    if speakers:
        config["speaker_labels"] = True
    return config


def push(endpoints: Endpoints, folder: Path, batch: str, config: dict[str, Any], bars: Progress) -> list[str]:
    """Each file to ``incoming/<batch>/<name>``, with one bar for the bytes of them all."""
    files = files_to_push(folder)
    client = endpoints.client()
    prefix = f"incoming/{check_batch_name(batch)}/"
    if config:  # read when each file is registered, so it goes first
        body = json.dumps(config).encode()
        s3_call(
            f"writing {CONFIG_NAME}",
            lambda: client.put_object(
                Bucket=endpoints.media_bucket,
                Key=prefix + CONFIG_NAME,
                Body=body,
                ContentType="application/json",
            ),
        )
    keys = []
    with bars:
        task = bars.add_task(f"batch {batch}", total=sum(p.stat().st_size for p in files))
        for path in files:
            key = prefix + path.name
            s3_call(
                f"uploading {path.name}",
                lambda p=path, k=key: client.upload_file(  # type: ignore[misc]
                    str(p), endpoints.media_bucket, k, Callback=lambda sent: bars.advance(task, sent)
                ),
            )
            keys.append(key)
    return keys


def transfer_bars(console: Any, disable: bool) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                    console=console, disable=disable)  # fmt: skip


def clock(seconds: float) -> str:
    seconds = round(max(seconds, 0.0))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def batch_view(name: str, found: dict[str, Any]) -> Group:
    status = found["status"]
    table = Table("file", "control", "stage", "status", "progress", title=None, expand=False)
    for file in found["files"]:
        table.add_row(file["filename"], file["control"], file["stage"], file["status"],
                      f"{100 * file['progress']:.0f}%")  # fmt: skip
    eta = "done" if all_finished(found) else clock(status["ETA"])
    head = (f"batch {name}: {100 * status['progress']:.0f}% of {status['total_files']} files, "
            f"ETA {eta}, {status['total_segments']} segments")  # fmt: skip
    return Group(head, table)


def all_finished(found: dict[str, Any], expect: int = 1) -> bool:
    """Every file finished, and at least ``expect`` registered (files just pushed may be on their way)."""
    files = found["files"]
    return len(files) >= max(expect, 1) and all(f["status"] in FINISHED for f in files)


async def watch(
    api: Api, name: str, show: Callable[[dict[str, Any]], None], once: bool, wait_s: float, expect: int = 1
) -> dict[str, Any]:
    """The batch until every file is finished (``once``: its state now). A batch whose files are
    not registered yet (just pushed) is waited for up to ``wait_s``, and for ``expect`` files."""
    check_batch_name(name)
    waited = 0.0
    while True:
        try:
            found = await api.batch(name)
        except CliError as err:
            if err.code != ExitCode.NOT_FOUND or once or waited >= wait_s:
                raise
            found = None
        if found is not None:
            show(found)
            if once or all_finished(found, expect):
                return found
        await asyncio.sleep(POLL_S)
        waited += POLL_S


def unpack(archive: bytes, target: Path) -> list[str]:
    target.mkdir(parents=True, exist_ok=True)
    written = []
    with zipfile.ZipFile(io.BytesIO(archive)) as zipped:
        for member in zipped.namelist():
            path = target / Path(member).name  # names only: nothing is written outside the folder
            path.write_bytes(zipped.read(member))
            written.append(str(path))
    return written
