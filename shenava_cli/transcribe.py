"""``shenava transcribe``: upload files (a few at a time), wait for each job with a live bar, write
the outputs. Every file is its own job, so the server transcribes them side by side."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from shenava_cli.client import FINISHED, Api
from shenava_cli.errors import CliError, ExitCode

FORMATS = ("srt", "vtt", "txt", "tsv", "json", "csv")
SERVER_RENDERED = ("srt", "vtt", "txt", "tsv")  # the server's subtitle renderer, as every client gets it
POLL_S = 1.0  # how often a waiting job is asked for its state


@dataclass
class Request:
    language: str
    formats: list[str]
    out_dir: Path
    speakers: bool
    parallel: int


@dataclass
class Outcome:
    file: str
    job_id: str = ""
    status: str = ""
    outputs: list[str] = field(default_factory=list)
    error: str = ""
    code: ExitCode = ExitCode.OK

    def as_json(self) -> dict[str, Any]:
        return {"file": self.file, "job_id": self.job_id, "status": self.status, "outputs": self.outputs,
                "error": self.error or None}  # fmt: skip


def progress_bars(console: Console, disable: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}", style="bold"),
        TextColumn("{task.fields[phase]:<12}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=console,
        disable=disable,
    )


async def wait_for(api: Api, job_id: str, report: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """Poll the job until it finishes; ``report`` sees each state (queued → processing %)."""
    while True:
        job = await api.job(job_id)
        report(job)
        if job["status"] in FINISHED:
            return job
        await asyncio.sleep(POLL_S)


async def output(api: Api, job_id: str, fmt: str) -> str:
    """The transcript in ``fmt``: subtitles and text as the server renders them, TRD's CSV, or
    Shenava's JSON (media-time words, confidences, speakers, flags)."""
    if fmt == "csv":
        return await api.csv(job_id)
    if fmt in SERVER_RENDERED:
        return await api.rendered(job_id, fmt)
    return json.dumps(await api.transcript(job_id), ensure_ascii=False, indent=1) + "\n"


async def write_outputs(api: Api, job_id: str, formats: list[str], target: Path) -> list[str]:
    """``target`` + ``.<format>`` for each format."""
    written = []
    for fmt in formats:
        text = await output(api, job_id, fmt)
        path = target.with_name(f"{target.name}.{fmt}")
        path.write_text(text, encoding="utf-8")
        written.append(str(path))
    return written


class Run:
    """One ``shenava transcribe`` invocation: its files, bars and outcomes."""

    def __init__(self, api: Api, request: Request, bars: Progress) -> None:
        self.api, self.request, self.bars = api, request, bars
        self.uploads = asyncio.Semaphore(max(1, request.parallel))
        self.stems: set[str] = set()

    def _target(self, path: Path, job_id: str) -> Path:
        stem = path.stem if path.stem not in self.stems else f"{path.stem}-{job_id[:8]}"
        self.stems.add(stem)
        return self.request.out_dir / stem

    def _show(self, task: TaskID, job: dict[str, Any]) -> None:
        status = job["status"]
        fraction = (job.get("progress") or {}).get("fraction", 0.0)
        phase = {"QUEUED": "queued", "IN_PROGRESS": "processing"}.get(status, status.lower())
        done = 100.0 if status in FINISHED else 100.0 * fraction
        self.bars.update(task, total=100.0, completed=done, phase=phase)

    async def one(self, path: Path) -> Outcome:
        outcome = Outcome(file=str(path))
        task = self.bars.add_task(path.name, total=max(path.stat().st_size, 1), phase="waiting")
        try:
            async with self.uploads:
                self.bars.update(task, phase="uploading")
                outcome.job_id = await self.api.create_job(
                    path, self.request.language, self.request.speakers,
                    lambda sent: self.bars.update(task, completed=sent),
                )  # fmt: skip
            job = await wait_for(self.api, outcome.job_id, lambda job: self._show(task, job))
            outcome.status = job["status"]
            if job["status"] != "COMPLETED":
                reason = job.get("failure_reason") or f"the job ended {job['status']}"
                raise CliError(f"{path.name}: {reason}", ExitCode.JOB_FAILED)
            target = self._target(path, outcome.job_id)
            outcome.outputs = await write_outputs(self.api, outcome.job_id, self.request.formats, target)
        except CliError as err:
            outcome.error, outcome.code = err.message, err.code
            self.bars.update(task, phase="failed")
        return outcome


async def transcribe_files(api: Api, files: list[Path], request: Request, bars: Progress) -> list[Outcome]:
    for path in files:
        if not path.is_file():
            raise CliError(f"{path} is not a file", ExitCode.USAGE)
    request.out_dir.mkdir(parents=True, exist_ok=True)
    run = Run(api, request, bars)
    with bars:
        return list(await asyncio.gather(*(run.one(path) for path in files)))
