"""The server over HTTP: the few calls the commands make, errors turned into ``CliError``."""

from __future__ import annotations

import io
import json
import mimetypes
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from shenava_cli.config import Config
from shenava_cli.errors import CliError, ExitCode, code_for_status

TIMEOUT = httpx.Timeout(60.0, connect=10.0, write=600.0)
FINISHED = {"COMPLETED", "FAILED", "STOPPED", "DELETED"}


class CountingReader(io.BufferedReader):
    """A file whose reads report the bytes read so far (the upload's progress)."""

    def __init__(self, path: Path, on_read: Callable[[int], None]) -> None:
        super().__init__(io.FileIO(path, "rb"))
        self._on_read = on_read
        self._sent = 0

    def read(self, size: int | None = -1, /) -> bytes:
        chunk = super().read(size)
        self._sent += len(chunk)
        self._on_read(self._sent)
        return chunk


def _reason(response: httpx.Response) -> str:
    """The message in any dialect's error body: {"error"}, {"detail"}, {"error": {"message"}}."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return response.text.strip()[:300] or response.reason_phrase
    if isinstance(body, dict):
        found = body.get("error") or body.get("detail") or body.get("message")
        if isinstance(found, dict):
            found = found.get("message")
        if found:
            return found if isinstance(found, str) else json.dumps(found)
    return response.reason_phrase


class Api:
    def __init__(self, config: Config) -> None:
        self.url = config.url
        self._http = httpx.AsyncClient(
            base_url=config.url, headers={"Authorization": f"Bearer {config.require_key()}"}, timeout=TIMEOUT
        )

    async def __aenter__(self) -> Api:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._http.aclose()

    async def call(self, method: str, path: str, **options: Any) -> httpx.Response:
        try:
            response = await self._http.request(method, path, **options)
        except httpx.TransportError as exc:
            raise CliError(
                f"cannot reach {self.url}: {exc or type(exc).__name__}", ExitCode.UNREACHABLE
            ) from exc
        if response.is_error:
            code = code_for_status(response.status_code)
            prefix = "the API key was refused: " if code == ExitCode.AUTH else ""
            raise CliError(f"{prefix}{_reason(response)} ({response.status_code})", code)
        return response

    async def json(self, method: str, path: str, **options: Any) -> Any:
        return (await self.call(method, path, **options)).json()

    async def session(self) -> str:
        return str((await self.json("GET", "/ui/api/session"))["tenant"])

    async def create_job(
        self, path: Path, language: str, speakers: bool, on_sent: Callable[[int], None] = lambda _: None
    ) -> str:
        """A TRD v3 job for the file; its id."""
        config = {"recognition": {"language": language}, "diarization": {"clustering": {"enabled": speakers}}}
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        with CountingReader(path, on_sent) as reader:
            files = {"upload_file": (path.name, reader, content_type)}
            body = await self.json(
                "POST", "/trd/v3/job/create", files=files, data={"config": json.dumps(config)}
            )
        return str(body["job"]["id"])

    async def job(self, job_id: str) -> dict[str, Any]:
        found: dict[str, Any] = await self.json("GET", f"/ui/api/jobs/{job_id}")
        return found

    async def jobs(self, **params: Any) -> dict[str, Any]:
        wanted = {k: v for k, v in params.items() if v not in (None, "")}
        found: dict[str, Any] = await self.json("GET", "/ui/api/jobs", params=wanted)
        return found

    async def transcript(self, job_id: str) -> dict[str, Any]:
        found: dict[str, Any] = await self.json("GET", f"/ui/api/jobs/{job_id}/transcript")
        return found

    async def rendered(self, job_id: str, fmt: str) -> str:
        """The transcript as the server renders it: srt, vtt, txt or tsv."""
        response = await self.call("GET", f"/ui/api/jobs/{job_id}/transcript", params={"format": fmt})
        return response.text

    async def webhook_log(self, job_id: str | None, failed: bool, page: int, limit: int) -> dict[str, Any]:
        """The tenant's attempts (newest first), or one job's deliveries with theirs."""
        params = {"failed": str(failed).lower(), "page": page, "limit": limit}
        if job_id:
            found: dict[str, Any] = await self.json(
                "GET", f"/shenava/v1/jobs/{job_id}/deliveries", params=params
            )
        else:
            found = await self.json("GET", "/shenava/v1/webhooks/deliveries", params=params)
        return found

    async def dead_letters(self, page: int, limit: int) -> dict[str, Any]:
        params = {"page": page, "limit": limit}
        found: dict[str, Any] = await self.json("GET", "/shenava/v1/webhooks/dead-letters", params=params)
        return found

    async def replay(self, job_id: str, delivery_id: str | None) -> dict[str, Any]:
        """One delivery again, or (without ``delivery_id``) every failed one of the job."""
        path = (
            f"/shenava/v1/jobs/{job_id}/deliveries/{delivery_id}/replay"
            if delivery_id
            else (f"/shenava/v1/jobs/{job_id}/deliveries/replay")
        )
        found: dict[str, Any] = await self.json("POST", path)
        return found

    async def csv(self, job_id: str) -> str:
        return (await self.call("GET", f"/trd/v3/job/result/{job_id}", params={"format": "csv"})).text

    async def stop(self, job_id: str) -> dict[str, Any]:
        found: dict[str, Any] = (await self.json("POST", f"/trd/v3/job/stop/{job_id}"))["job"]
        return found

    async def batch(self, name: str) -> dict[str, Any]:
        found: dict[str, Any] = await self.json("GET", f"/ui/api/batches/{name}")
        return found

    async def batch_results(self, name: str, fmt: str) -> bytes:
        response = await self.call("GET", f"/trd/transcription/result/batch/{name}", params={"format": fmt})
        return response.content
