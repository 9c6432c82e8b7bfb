"""A live request its asker gave up on is never read, on a real nats-server.

The worker here is the live lane's own loop (``answer_until``) with a scripted engine that holds
the first utterance until the test lets it go, so the second request is still queued when its
asker cancels it (as the API cancels a speculative read when the speaker goes on talking). The
subject is this test's own: a live worker of the session's pipeline may serve the real one.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from events.bus import connect
from functions.common.asr import TranscribeOptions
from functions.common.bus import NatsBus, withdrawn_subject
from functions.common.live import RATE, LiveReply, LiveRequest, encode_request
from functions.common.settings import Settings
from functions.common.transcript import Segment
from functions.transcribe.live import Withdrawn, answer_until

SUBJECT = "shenava-live-test.utterance"


@dataclass
class Run:
    found: list[Segment]
    language: str = "en"

    def segments(self) -> Iterator[Segment]:
        return iter(self.found)


@dataclass
class HeldEngine:
    """Names each utterance by its length; holds the first until ``release`` is set."""

    started: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    read_s: list[float] = field(default_factory=list)

    def transcribe_channel(self, wav_path: Path, channel: int, options: TranscribeOptions) -> Run:
        raise AssertionError("the live lane never reads files")

    def transcribe_audio(
        self, audio: npt.NDArray[np.float32], channel: int, options: TranscribeOptions
    ) -> Run:
        seconds = audio.size / RATE
        self.read_s.append(seconds)
        self.started.set()
        assert self.release.wait(30), "the test never released the first utterance"
        return Run([Segment(start=0.0, end=seconds, text=f"{seconds:g} seconds", confidence=0.9)])


def utterance(seconds: float) -> npt.NDArray[np.float32]:
    return np.full(round(seconds * RATE), 0.1, dtype=np.float32)


async def until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    async def check() -> None:
        while not condition():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(check(), timeout_s)


async def test_a_request_withdrawn_while_queued_is_skipped_and_the_next_is_answered(
    stack_settings: Settings,
) -> None:
    engine = HeldEngine()
    withdrawn = Withdrawn()
    nc, _ = await connect(stack_settings, name="live-withdrawn-test")
    bus = NatsBus(stack_settings)
    stop = asyncio.Event()
    try:
        queued = await nc.subscribe(SUBJECT, queue="live")
        await nc.subscribe(withdrawn_subject(SUBJECT), cb=withdrawn.record)
        worker = asyncio.create_task(answer_until(stop, queued, engine, withdrawn))

        def ask(seconds: float) -> asyncio.Task[bytes | None]:
            payload = encode_request(LiveRequest(tenant="acme", language="en"), utterance(seconds))
            return asyncio.create_task(bus.request(SUBJECT, payload, 30.0))

        first = ask(1.0)
        await asyncio.to_thread(engine.started.wait, 10)  # the worker is busy with it
        stale = ask(2.0)
        await until(lambda: queued.pending_msgs == 1)  # delivered, waiting behind the first
        stale.cancel()
        await until(lambda: len(withdrawn) == 1)
        kept = ask(3.0)
        await until(lambda: queued.pending_msgs == 2)
        engine.release.set()

        answers = [LiveReply.model_validate_json(raw or b"") for raw in (await first, await kept)]
        assert [a.segments[0].text for a in answers] == ["1 seconds", "3 seconds"]
        assert engine.read_s == [1.0, 3.0]  # the withdrawn two seconds were never read
        assert stale.cancelled()
        stop.set()
        await worker
    finally:
        engine.release.set()
        stop.set()
        await bus.close()
        await nc.drain()
