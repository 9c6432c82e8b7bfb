"""The ``shenava`` commands (typer), their output (rich on stderr, results or ``--json`` on stdout)
and their exit codes (``errors.ExitCode``)."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from shenava_cli import batches, webhooks
from shenava_cli.client import Api
from shenava_cli.config import Config, load_config
from shenava_cli.errors import CliError, ExitCode
from shenava_cli.storage import Endpoints, create_key
from shenava_cli.transcribe import FORMATS, Request, output, progress_bars, transcribe_files

app = typer.Typer(help="Speech to text with a Shenava server.", no_args_is_help=True, add_completion=False,
                  pretty_exceptions_enable=False)  # fmt: skip
batch_app = typer.Typer(help="The drop folder: push a directory as a batch, watch it, fetch its results.",
                        no_args_is_help=True)  # fmt: skip
keys_app = typer.Typer(help="API keys (written to the state bucket over S3).", no_args_is_help=True)
webhooks_app = typer.Typer(help="Webhook deliveries.", no_args_is_help=True)
app.add_typer(batch_app, name="batch")
app.add_typer(keys_app, name="keys")
app.add_typer(webhooks_app, name="webhooks")

err = Console(stderr=True)
out = Console(highlight=False, soft_wrap=True)
T = TypeVar("T")

JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
EndpointsOpt = Annotated[
    Path | None,
    typer.Option("--endpoints", help="endpoints.json with the S3 credentials [.shenava/endpoints.json]"),
]


def config(ctx: typer.Context) -> Config:
    found: Config = ctx.obj
    return found


def run(coroutine: Coroutine[Any, Any, T], as_json: bool) -> T:
    """Run a command's work; a ``CliError`` ends the program with its message and exit code."""
    try:
        return asyncio.run(coroutine)
    except CliError as error:
        fail(error, as_json)
        raise  # unreachable: fail exits


def fail(error: CliError, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"error": error.message, "code": int(error.code)}))
    err.print(f"[red]error:[/red] {error.message}", highlight=False)
    raise typer.Exit(int(error.code))


def emit(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=1))


@app.callback()
def options(
    ctx: typer.Context,
    url: Annotated[
        str | None, typer.Option("--url", help="The server [SHENAVA_URL, config file, http://127.0.0.1:8000]")
    ] = None,
    key: Annotated[
        str | None, typer.Option("--key", help="API key [SHENAVA_API_KEY, config file, .shenava/dev-api-key]")
    ] = None,
) -> None:
    """Configuration: flags, then SHENAVA_URL / SHENAVA_API_KEY, then ~/.config/shenava/config.toml."""
    try:
        ctx.obj = load_config(url, key)
    except CliError as error:
        fail(error, False)


@app.command()
def whoami(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """The server and the tenant your key belongs to."""

    async def work() -> str:
        async with Api(config(ctx)) as api:
            return await api.session()

    tenant = run(work(), as_json)
    emit({"url": config(ctx).url, "tenant": tenant}) if as_json else out.print(
        f"{config(ctx).url}: tenant {tenant}"
    )


def chosen_formats(values: list[str]) -> list[str]:
    wanted = [v.strip().lower() for value in values for v in value.split(",") if v.strip()]
    if "all" in wanted:
        return list(FORMATS)
    unknown = [v for v in wanted if v not in FORMATS]
    if unknown:
        raise CliError(
            f"unknown format {', '.join(unknown)}: choose from {', '.join(FORMATS)} or all", ExitCode.USAGE
        )
    return list(dict.fromkeys(wanted)) or ["txt"]


@app.command()
def transcribe(
    ctx: typer.Context,
    files: Annotated[list[Path], typer.Argument(help="Audio or video files.")],
    language: Annotated[
        str, typer.Option("--language", "-l", help="ISO 639-1 code, or auto to detect.")
    ] = "auto",
    formats: Annotated[
        list[str], typer.Option("--format", "-f", help="srt, vtt, txt, tsv, json, csv or all (repeatable).")
    ] = ["txt"],  # noqa: B006
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Folder for the outputs.")] = Path("."),
    speakers: Annotated[bool, typer.Option("--speakers", help="Label speakers (diarization).")] = False,
    parallel: Annotated[int, typer.Option("--parallel", min=1, max=32, help="Uploads at once.")] = 4,
    as_json: JsonFlag = False,
) -> None:
    """Upload files, wait for their transcripts and write them as FILE.<format> in --out."""
    try:
        request = Request(language, chosen_formats(formats), out_dir, speakers, parallel)
    except CliError as error:
        fail(error, as_json)

    async def work() -> list[Any]:
        async with Api(config(ctx)) as api:
            return await transcribe_files(api, files, request, progress_bars(err, disable=as_json))

    outcomes = run(work(), as_json)
    if as_json:
        emit([o.as_json() for o in outcomes])
    for outcome in outcomes:
        if outcome.error:
            err.print(f"[red]{outcome.file}[/red]: {outcome.error}", highlight=False)
        elif not as_json:
            out.print(f"{outcome.file} → {', '.join(outcome.outputs)}")
    failed = [o.code for o in outcomes if o.code != ExitCode.OK]
    if failed:
        raise typer.Exit(int(failed[0]))


def since_time(value: str | None) -> str | None:
    """``30m``, ``2h``, ``7d`` ago, or an ISO 8601 date or time (UTC unless it says otherwise)."""
    if not value:
        return None
    ago = re.fullmatch(r"(\d+)\s*([mhd])", value.strip())
    if ago:
        unit = {"m": "minutes", "h": "hours", "d": "days"}[ago.group(2)]
        return (datetime.now(UTC) - timedelta(**{unit: int(ago.group(1))})).isoformat()
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise CliError(f"--since {value!r}: use 30m, 2h, 7d or an ISO 8601 date", ExitCode.USAGE) from exc
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


@app.command()
def jobs(
    ctx: typer.Context,
    status: Annotated[
        str | None, typer.Option(help="QUEUED, IN_PROGRESS, COMPLETED, FAILED, STOPPED (comma-separated).")
    ] = None,
    since: Annotated[str | None, typer.Option(help="Created since: 30m, 2h, 7d or an ISO 8601 date.")] = None,
    search: Annotated[str | None, typer.Option(help="In the file name or tag, or an id prefix.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 20,
    as_json: JsonFlag = False,
) -> None:
    """Your jobs, newest first."""

    async def work() -> dict[str, Any]:
        async with Api(config(ctx)) as api:
            return await api.jobs(status=status, since=since_time(since), q=search, limit=limit)

    found = run(work(), as_json)
    if as_json:
        emit(found)
        return
    table = Table(caption=f"{found['total']} jobs in all")
    table.add_column("id", no_wrap=True)  # whole, to be copied
    for name in ("file", "status", "created (UTC)", "batch/source"):
        table.add_column(name, overflow="fold")
    for job in found["jobs"]:
        state = job["status"] + (f" {100 * job['progress']['fraction']:.0f}%" if job.get("progress") else "")
        table.add_row(job["id"], job["filename"], state, job["created_at"][5:16].replace("T", " "),
                      job["batch"] or job["source"])  # fmt: skip
    out.print(table)


@app.command()
def get(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(help="The job's id.")],
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format", "-f", help="srt, vtt, txt, tsv, json or csv: the transcript instead of the status."
        ),
    ] = None,
    out_file: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write to this file instead of stdout.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """A job's status, or its transcript in a format."""
    if fmt is not None and fmt not in FORMATS:
        fail(CliError(f"unknown format {fmt}: choose from {', '.join(FORMATS)}", ExitCode.USAGE), as_json)

    async def work() -> tuple[dict[str, Any], str | None]:
        async with Api(config(ctx)) as api:
            job = await api.job(job_id)
            if fmt is None:
                return job, None
            return job, await output(api, job_id, fmt)

    job, text = run(work(), as_json)
    if text is not None:
        out_file.write_text(text, encoding="utf-8") if out_file else sys.stdout.write(text)
    elif as_json:
        emit(job)
    else:
        progress = f" ({100 * job['progress']['fraction']:.0f}%)" if job.get("progress") else ""
        out.print(f"{job['id']}  {job['filename']}  {job['status']}{progress}")
        if job.get("failure_reason"):
            out.print(f"reason: {job['failure_reason']}")


@app.command()
def cancel(ctx: typer.Context, job_id: Annotated[str, typer.Argument()], as_json: JsonFlag = False) -> None:
    """Stop a queued or running job."""

    async def work() -> dict[str, Any]:
        async with Api(config(ctx)) as api:
            return await api.stop(job_id)

    job = run(work(), as_json)
    emit(job) if as_json else out.print(f"{job['id']} {job['status']}")


@batch_app.command("push")
def batch_push(
    ctx: typer.Context,
    folder: Annotated[Path, typer.Argument(help="A directory of audio files.")],
    batch: Annotated[str, typer.Option("--batch", "-b", help="The batch's name.")],
    language: Annotated[
        str | None,
        typer.Option("--language", "-l", help="For every file (default: the server's drop-folder language)."),
    ] = None,
    speakers: Annotated[bool, typer.Option("--speakers", help="Label speakers.")] = False,
    endpoints: EndpointsOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Write a directory's files into the drop folder as one batch (S3)."""
    try:
        found = Endpoints.load(endpoints or config(ctx).endpoints)
        config_body = batches.batch_config(language, speakers)
        keys = batches.push(found, folder, batch, config_body, batches.transfer_bars(err, disable=as_json))
    except CliError as error:
        fail(error, as_json)
    emit({"batch": batch, "objects": keys}) if as_json else out.print(
        f"pushed {len(keys)} files to batch {batch}; follow it with: shenava batch watch {batch}"
    )


@batch_app.command("watch")
def batch_watch(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The batch's name.")],
    once: Annotated[bool, typer.Option("--once", help="Show the state now and return.")] = False,
    wait_s: Annotated[
        float, typer.Option("--wait", help="Seconds to wait for a just-pushed batch to appear.")
    ] = 60.0,
    expect: Annotated[
        int, typer.Option("--expect", min=1, help="Wait until at least this many files are registered.")
    ] = 1,
    as_json: JsonFlag = False,
) -> None:
    """Follow a batch: each file's state, overall progress and ETA, until every file is finished."""

    async def work() -> dict[str, Any]:
        async with Api(config(ctx)) as api:
            if as_json:
                return await batches.watch(api, name, lambda _: None, once, wait_s, expect)
            with Live(console=err, auto_refresh=False) as live:

                def show(found: dict[str, Any]) -> None:
                    live.update(batches.batch_view(name, found), refresh=True)

                return await batches.watch(api, name, show, once, wait_s, expect)

    found = run(work(), as_json)
    if as_json:
        emit(found)
    failed = [f for f in found["files"] if f["status"] in {"FAILED", "STOPPED"}]
    if failed and not once:
        raise typer.Exit(int(ExitCode.JOB_FAILED))


@batch_app.command("results")
def batch_results(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The batch's name.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="json, csv or json-array.")] = "json",
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Unpacked into OUT/NAME/.")] = Path("."),
    as_json: JsonFlag = False,
) -> None:
    """The finished files' results (TRD batch API), unpacked."""

    async def work() -> bytes:
        async with Api(config(ctx)) as api:
            return await api.batch_results(batches.check_batch_name(name), fmt)

    written = batches.unpack(run(work(), as_json), out_dir / name)
    emit({"batch": name, "files": written}) if as_json else out.print(
        "\n".join(written) or "no finished files yet"
    )


@keys_app.command("create")
def keys_create(
    ctx: typer.Context,
    tenant: Annotated[str, typer.Option("--tenant", help="Whose key it is.")],
    name: Annotated[str, typer.Option("--name", help="A note to tell keys apart.")] = "",
    endpoints: EndpointsOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Create an API key for a tenant and print it (it is shown once; only its hash is kept)."""
    try:
        key = create_key(Endpoints.load(endpoints or config(ctx).endpoints), tenant, name)
    except CliError as error:
        fail(error, as_json)
    emit({"tenant": tenant, "key": key}) if as_json else print(key)


@webhooks_app.command("log")
def webhooks_log(
    ctx: typer.Context,
    job: Annotated[str | None, typer.Option("--job", help="One job's deliveries and their attempts.")] = None,
    failed: Annotated[bool, typer.Option("--failed", help="Failed attempts (deliveries) only.")] = False,
    dead: Annotated[bool, typer.Option("--dead", help="Deliveries whose retries ran out.")] = False,
    page: Annotated[int, typer.Option(min=1)] = 1,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
    as_json: JsonFlag = False,
) -> None:
    """Webhook delivery attempts, newest first: time, URL, event, status, latency, error, next retry."""

    async def work() -> dict[str, Any]:
        async with Api(config(ctx)) as api:
            return (
                await api.dead_letters(page, limit)
                if dead
                else await api.webhook_log(job, failed, page, limit)
            )

    found = run(work(), as_json)
    if as_json:
        emit(found)
    elif dead:
        out.print(webhooks.dead_letters_table(found))
    else:
        out.print(webhooks.deliveries_table(found) if job else webhooks.attempts_table(found))


@webhooks_app.command("replay")
def webhooks_replay(
    ctx: typer.Context,
    job: Annotated[str, typer.Argument(help="The job whose deliveries to send again.")],
    delivery: Annotated[
        str | None, typer.Argument(help="One delivery's id (webhooks log --job); none: every failed one.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Send a delivery again (same webhook-id, so receivers deduplicate), or every failed one of a job."""

    async def work() -> dict[str, Any]:
        async with Api(config(ctx)) as api:
            return await api.replay(job, delivery)

    found = run(work(), as_json)
    emit(found) if as_json else out.print(
        f"replay {found['replay_id']}: {len(found['deliveries'])} deliveries of {job} queued; "
        f"follow them with: shenava webhooks log --job {job}"
    )


def main() -> None:
    app()
