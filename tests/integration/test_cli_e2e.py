"""The installed ``shenava`` command against the running app: transcribe to subtitles, list, get,
cancel, errors with their exit codes, keys and the drop folder."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.integration.pipeline import Pipeline
from tests.speech import espeak_wav

pytestmark = [pytest.mark.e2e, pytest.mark.asr]

SHENAVA = Path(sys.executable).with_name("shenava")  # installed by make (pip install -e .)
SPOKEN = {
    "greeting.wav": "Good morning, and welcome to the weather report for Tuesday.",
    "reply.wav": "Thank you very much, the meeting starts at nine o'clock.",
}
SRT_TIME = re.compile(r"^\d\d:\d\d:\d\d,\d\d\d --> \d\d:\d\d:\d\d,\d\d\d$")


@dataclass
class Ran:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


async def shenava(pipeline: Pipeline, *args: str, key: str | None = None, cwd: Path | None = None) -> Ran:
    """The command as a user runs it (a child process: this event loop keeps serving the pipeline)."""
    if not SHENAVA.exists():
        pytest.fail(f"{SHENAVA} is missing: `make install` installs the command line")
    env = {**os.environ, "SHENAVA_URL": pipeline.api_url, "SHENAVA_API_KEY": key or pipeline.api_key,
           "SHENAVA_CONFIG": "/nonexistent", "NO_COLOR": "1", "COLUMNS": "200"}  # fmt: skip
    child = await asyncio.create_subprocess_exec(
        str(SHENAVA), *args, cwd=cwd, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(child.communicate(), 300)
    return Ran(child.returncode or 0, out.decode(), err.decode())


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("speech")
    for name, text in SPOKEN.items():
        espeak_wav(text, "en-us", folder / name)
    return folder


async def test_transcribe_writes_subtitles_for_several_files_at_once(
    pipeline: Pipeline, speech: Path, tmp_path: Path
) -> None:
    files = [str(speech / name) for name in SPOKEN]
    ran = await shenava(pipeline, "transcribe", *files, "--language", "en", "-f", "srt", "-f", "vtt,json",
                        "--out", str(tmp_path / "out"), "--json")  # fmt: skip
    assert ran.code == 0, ran.stderr
    outcomes = ran.json()
    assert [o["status"] for o in outcomes] == ["COMPLETED", "COMPLETED"]
    srt = (tmp_path / "out" / "greeting.srt").read_text()
    blocks = srt.strip().split("\n\n")
    assert blocks[0].startswith("1\n") and all(SRT_TIME.match(b.split("\n")[1]) for b in blocks), srt
    assert "morning" in srt.lower() and "weather" in srt.lower()
    assert (tmp_path / "out" / "reply.vtt").read_text().startswith("WEBVTT\n\n")
    transcript = json.loads((tmp_path / "out" / "reply.json").read_text())
    assert transcript["job_id"] == outcomes[1]["job_id"] and transcript["segments"][0]["words"]

    listed = (await shenava(pipeline, "jobs", "--status", "completed", "--json")).json()
    assert {o["job_id"] for o in outcomes} <= {j["id"] for j in listed["jobs"]}
    text = await shenava(pipeline, "get", outcomes[1]["job_id"], "--format", "txt")
    assert text.code == 0 and "meeting" in text.stdout.lower()
    again = await shenava(pipeline, "cancel", outcomes[1]["job_id"])
    assert again.code == 6 and "COMPLETED" in again.stderr  # only queued or running jobs stop


async def test_media_that_cannot_be_read_fails_with_its_reason(pipeline: Pipeline, tmp_path: Path) -> None:
    notes = tmp_path / "notes.wav"
    notes.write_text("these are meeting notes, not audio\n" * 20)
    ran = await shenava(pipeline, "transcribe", str(notes), "--out", str(tmp_path))
    assert ran.code == 7, ran.stderr
    assert "notes.wav" in ran.stderr and not (tmp_path / "notes.txt").exists()


async def test_a_refused_key_and_an_unknown_job_have_their_exit_codes(pipeline: Pipeline) -> None:
    refused = await shenava(pipeline, "jobs", key="shv_not-a-key")
    assert refused.code == 4 and "API key" in refused.stderr
    missing = await shenava(pipeline, "get", "01900000-0000-7000-8000-000000000000")
    assert missing.code == 5


def write_endpoints(pipeline: Pipeline, path: Path) -> Path:
    settings = pipeline.settings
    path.write_text(json.dumps({
        "s3_endpoint_url": settings.s3_endpoint_url, "s3_access_key": settings.s3_access_key,
        "s3_secret_key": settings.s3_secret_key, "s3_region": settings.s3_region,
        "media_bucket": settings.media_bucket, "state_bucket": settings.state_bucket,
    }))  # fmt: skip
    return path


async def test_a_new_key_pushes_watches_and_fetches_a_drop_folder_batch(
    pipeline: Pipeline, speech: Path, tmp_path: Path
) -> None:
    endpoints = str(write_endpoints(pipeline, tmp_path / "endpoints.json"))
    tenant = pipeline.settings.drop_tenant  # who owns drop-folder files
    created = await shenava(
        pipeline, "keys", "create", "--tenant", tenant, "--endpoints", endpoints, "--json"
    )
    assert created.code == 0, created.stderr
    key = created.json()["key"]
    assert (await shenava(pipeline, "whoami", "--json", key=key)).json()["tenant"] == tenant

    pushed = await shenava(pipeline, "batch", "push", str(speech), "--batch", "cli-lote", "--language", "en",
                           "--endpoints", endpoints, key=key)  # fmt: skip
    assert pushed.code == 0, pushed.stderr
    watched = await shenava(pipeline, "batch", "watch", "cli-lote", "--expect", "2", "--json", key=key)
    assert watched.code == 0, watched.stderr
    batch = watched.json()
    assert sorted(f["filename"] for f in batch["files"]) == sorted(SPOKEN)
    assert batch["status"]["progress"] == 1.0 and all(f["status"] == "COMPLETED" for f in batch["files"])

    fetched = await shenava(pipeline, "batch", "results", "cli-lote", "--out", str(tmp_path), key=key)
    assert fetched.code == 0, fetched.stderr
    result = json.loads((tmp_path / "cli-lote" / "greeting.wav.json").read_text())
    assert "weather" in " ".join(s["text"] for s in result["segments"]).lower()  # read in English, as asked
