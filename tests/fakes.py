"""In-memory and on-disk fakes that implement the same protocols as the real adapters."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt
from cryptography.fernet import Fernet

from events.models import Event
from functions.common.asr import TranscribeOptions
from functions.common.bootstrap import Deps
from functions.common.secrets import SecretBox
from functions.common.settings import Settings
from functions.common.state_store import MemoryStateStore
from functions.common.transcript import Segment, Word


class DirMediaStore:
    """A media bucket in a directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.metadata: dict[str, dict[str, str]] = {}
        self.ranges_read: list[tuple[str, int, int]] = []  # (key, first byte, last byte) per read

    async def put_file(
        self, key: str, path: Path, content_type: str, metadata: dict[str, str] | None = None
    ) -> None:
        target = self.root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        self.metadata[key] = dict(metadata or {})

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        target = self.root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        self.metadata[key] = {"content-type": content_type}

    async def download(self, key: str, path: Path) -> dict[str, str]:
        source = self.root / key
        if not source.exists():
            raise FileNotFoundError(key)
        shutil.copyfile(source, path)
        return self.metadata.get(key, {})

    async def copy(self, source: str, target: str) -> None:
        await self.put_file(target, self.root / source, "", self.metadata.get(source))

    async def size(self, key: str) -> int:
        source = self.root / key
        if not source.exists():
            raise FileNotFoundError(key)
        return source.stat().st_size

    async def chunks(self, key: str, first: int, last: int) -> AsyncIterator[bytes]:
        self.ranges_read.append((key, first, last))
        with (self.root / key).open("rb") as source:
            source.seek(first)
            yield source.read(last - first + 1)

    async def delete(self, key: str) -> None:
        (self.root / key).unlink(missing_ok=True)
        self.metadata.pop(key, None)

    async def delete_prefix(self, prefix: str) -> None:
        for key in [k for k in self.metadata if k.startswith(prefix)]:
            await self.delete(key)

    def stored_keys(self) -> list[str]:
        return sorted(str(p.relative_to(self.root)) for p in self.root.rglob("*") if p.is_file())


@dataclass
class ScriptedRun:
    language: str
    scripted: list[Segment]

    def segments(self) -> Iterator[Segment]:
        yield from self.scripted


@dataclass
class ScriptedEngine:
    """An engine that returns given segments per channel (for handler logic, not for ASR)."""

    per_channel: dict[int, list[str]]
    language: str = "en"
    calls: list[tuple[int, TranscribeOptions]] = field(default_factory=list)

    def transcribe_channel(self, wav_path: Path, channel: int, options: TranscribeOptions) -> ScriptedRun:
        assert wav_path.exists()
        return self.transcribe_audio(np.zeros(0, np.float32), channel, options)

    def transcribe_audio(
        self, audio: npt.NDArray[np.float32], channel: int, options: TranscribeOptions
    ) -> ScriptedRun:
        self.calls.append((channel, options))
        segments = []
        for i, text in enumerate(self.per_channel.get(channel, [])):
            words = tuple(
                Word(text=w, start=i + j * 0.1, end=i + j * 0.1 + 0.1, confidence=0.9)
                for j, w in enumerate(text.split())
            )
            segments.append(
                Segment(channel=channel, start=float(i), end=i + 0.9, text=text, confidence=0.9, words=words)
            )
        return ScriptedRun(options.language or self.language, segments)


@asynccontextmanager
async def memory_deps(root: Path, engine: Any = None, **settings: Any) -> AsyncIterator[Deps]:
    """``Deps`` over in-memory state, a directory media bucket and a real HTTP client."""
    configured = Settings(data_dir=root / "data", secret_key=Fernet.generate_key().decode(), **settings)
    async with httpx.AsyncClient() as http:
        yield Deps(
            settings=configured, state=MemoryStateStore(), media=DirMediaStore(root / "media"),
            http=http, secrets=SecretBox(configured.secret_key), engine=engine, bus=MemoryBus(),
        )  # fmt: skip


class MemoryBus:
    """The ``Bus`` in memory. Published events are kept in ``events`` (a test delivers them to
    handlers itself); a wait first hands its key to ``on_wait`` — the test's stand-in for the
    functions, which may finish the job — then checks, as the real waits do."""

    def __init__(
        self, on_wait: Callable[[str], Awaitable[None]] | None = None, queue: int | None = None
    ) -> None:
        self.events: list[Event] = []
        self.waits: list[str] = []
        self.on_wait = on_wait
        self.queue = queue
        # the test's stand-in for a request/reply service (the live lane); None: nobody answers
        self.responder: Callable[[str, bytes], Awaitable[bytes | None]] | None = None

    async def publish(self, event: Event) -> None:
        self.events.append(event)

    async def wait(self, key: str, finished: Callable[[], Awaitable[bool]], timeout_s: float) -> bool:
        self.waits.append(key)
        if self.on_wait is not None:
            await self.on_wait(key)
        return await finished()

    async def queue_depth(self) -> int | None:
        return self.queue

    async def request(self, subject: str, payload: bytes, timeout_s: float) -> bytes | None:
        return await self.responder(subject, payload) if self.responder is not None else None

    async def close(self) -> None:
        return None


class MonotonicClock:
    """A clock a test moves by hand: the API's caches' (``create_app(settings, monotonic=…)``)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


async def until_listening(server: Any, serving: asyncio.Task[Any], timeout_s: float = 30.0) -> None:
    """Until the uvicorn ``server`` listens (uvicorn signals it only by a flag); fails, instead of
    waiting for ever, when it stops first or does not listen within ``timeout_s``."""

    async def listening() -> None:
        while not server.started:
            if serving.done():
                raise RuntimeError("the server stopped before it listened")
            await asyncio.sleep(0.01)

    await asyncio.wait_for(listening(), timeout_s)
