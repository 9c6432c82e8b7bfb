"""The live lane's worker: one utterance in, its segments out, at once (``functions.common.live``
says why the lane exists). ``python -m functions.transcribe.live`` answers NATS requests on
``LIVE_SUBJECT`` in the ``live`` queue group, one at a time, with the engine loaded once;
SIGTERM/SIGINT finish the utterance in hand, then exit. It is the transcribe function's second
entrypoint: the same engine and guard as files, another trigger.

Stages: decode the request (16 kHz PCM and who asks); read it with the engine, the encoder given
a window just longer than the utterance (``LIVE_WINDOW_S``: most of a read's cost is the
encoder, and it follows its input); if the quality guard flagged what came back, read it again
with Whisper's full 30 s window, as files are read (an interim hypothesis is never read twice:
the final reading follows anyway); answer with the segments, their times from the utterance's
start. The worker keeps the engine loaded and reads one utterance at a time, in arrival order;
more workers in the same queue group share the streams. A request its asker gave up on before
the worker reached it (a speculative read whose speaker went on talking, an interim hypothesis
overtaken, a timeout) is skipped: the API announces its id as withdrawn (``functions.common.bus``),
and every worker keeps the latest ids it heard.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from typing import Any

import numpy as np
import numpy.typing as npt
from prometheus_client import Counter, Histogram

from functions.common.asr import MAX_CHUNK_S, AsrEngine, TranscribeOptions
from functions.common.bus import REQUEST_ID_HEADER, withdrawn_subject
from functions.common.live import LIVE_QUEUE, LIVE_SUBJECT, RATE, LiveReply, LiveRequest, decode_request
from functions.common.logs import configure_logging
from functions.common.settings import Settings, load_settings
from functions.common.transcript import Segment
from functions.transcribe.guard import Flag

log = logging.getLogger("shenava.live")

UTTERANCES = Counter("shenava_live_utterances_total", "Live utterances read, by outcome", ["outcome"])
LATENCY = Histogram(
    "shenava_live_read_seconds", "From a live request's arrival to its answer",
    buckets=(0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0),
)  # fmt: skip

LIVE_WINDOW_S = 15.0  # the encoder's window for an utterance up to LIVE_WINDOW_S - MARGIN_S long
MARGIN_S = 1.0  # silence after the utterance inside the window, as Whisper usually hears
SUSPICIOUS = frozenset(Flag) - {Flag.NO_SPEECH}  # what a full-window re-read may mend
WITHDRAWN_KEPT = 4096  # a withdrawn request is skipped if it is still queued among this many


class Withdrawn:
    """The ids of the latest requests whose askers stopped waiting (``withdrawn_subject``)."""

    def __init__(self, limit: int = WITHDRAWN_KEPT) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._limit = limit

    async def record(self, msg: Any) -> None:
        self._ids[msg.data.decode("ascii", "replace")] = None
        while len(self._ids) > self._limit:
            self._ids.popitem(last=False)

    def holds(self, msg: Any) -> bool:
        request_id = (msg.headers or {}).get(REQUEST_ID_HEADER)
        return request_id is not None and request_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)


def answer(engine: AsrEngine, data: bytes) -> bytes:
    """A request's bytes in, the reply's JSON out (run in a thread: the engine blocks)."""
    request, audio = decode_request(data)
    started = time.perf_counter()
    language, segments = read(engine, request, audio)
    reply = LiveReply(language=language, segments=tuple(segments), decode_s=time.perf_counter() - started)
    return reply.model_dump_json().encode()


def read(
    engine: AsrEngine, request: LiveRequest, audio: npt.NDArray[np.float32]
) -> tuple[str, list[Segment]]:
    seconds = audio.size / RATE
    window = LIVE_WINDOW_S if seconds + MARGIN_S <= LIVE_WINDOW_S else MAX_CHUNK_S
    language, segments = _read_once(engine, request, audio, window)
    if window < MAX_CHUNK_S and not request.interim and any(SUSPICIOUS & set(s.flags) for s in segments):
        log.info("re-reading a flagged utterance with the full window", extra={"tenant": request.tenant})
        language, segments = _read_once(engine, request, audio, MAX_CHUNK_S)
    return language, segments


def _read_once(
    engine: AsrEngine, request: LiveRequest, audio: npt.NDArray[np.float32], window_s: float
) -> tuple[str, list[Segment]]:
    options = TranscribeOptions(language=request.language, hints=request.hints, window_s=window_s)
    run = engine.transcribe_audio(audio, 0, options)
    segments = [s for s in run.segments() if s.text.strip()]
    return run.language, segments


async def serve(settings: Settings, stop: asyncio.Event) -> None:
    from events.bus import connect
    from functions.common.observability import ObservabilityServer
    from functions.transcribe.engine import WhisperEngine

    state = {"status": "starting", "function": "live"}
    observability = ObservabilityServer(settings.metrics_host, settings.metrics_port, lambda: dict(state))
    await observability.start()
    try:
        engine = WhisperEngine(settings.model_copy(update={"asr_beam_size": settings.live_beam_size}))
        nc, _ = await connect(settings, name="shenava-live")
        withdrawn = Withdrawn()
        withdrawals = await nc.subscribe(withdrawn_subject(LIVE_SUBJECT), cb=withdrawn.record)
        subscription = await nc.subscribe(LIVE_SUBJECT, queue=LIVE_QUEUE)
        state["status"] = "ok"
        log.info("live lane ready")
        try:
            await answer_until(stop, subscription, engine, withdrawn)
        finally:
            await subscription.unsubscribe()
            await withdrawals.unsubscribe()
            await nc.drain()
    finally:
        await observability.close()


async def answer_until(
    stop: asyncio.Event, subscription: Any, engine: AsrEngine, withdrawn: Withdrawn
) -> None:
    """Answer the subscription's requests one at a time until ``stop`` (withdrawn ones skipped)."""
    while not stop.is_set():
        try:
            msg = await subscription.next_msg(timeout=1.0)
        except TimeoutError:
            continue
        if withdrawn.holds(msg):
            UTTERANCES.labels(outcome="withdrawn").inc()
            continue
        started = time.monotonic()
        try:
            await msg.respond(await asyncio.to_thread(answer, engine, msg.data))
            UTTERANCES.labels(outcome="answered").inc()
        except Exception:  # one bad utterance must not end the lane
            UTTERANCES.labels(outcome="failed").inc()
            with contextlib.suppress(Exception):  # an empty reply: the API falls back now, not at its timeout
                await msg.respond(b"")
            log.exception("an utterance could not be read")
        LATENCY.observe(time.monotonic() - started)


def main() -> None:
    from functions.common.worker import run_until_signalled

    settings = load_settings()
    configure_logging(settings.log_level)
    run_until_signalled(lambda stop: serve(settings, stop))


if __name__ == "__main__":
    main()
