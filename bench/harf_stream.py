"""Live transcription over the Harf websocket: latency and real-time factor, next to a file.

One run on the real embedded stack (SeaweedFS, bridge, NATS, ingest, a transcribe worker
process, the API), one audio: English espeak-ng sentences with a one-second pause after each,
16 kHz mono, so every sentence is one utterance for the VAD.

- **live**: the WAV streamed over ``/ws_api/transcribe_files/wav/sync/`` in 32,000-byte windows
  paced at real time (one second of audio per second, as a microphone would). Latency of an
  utterance = when its first segment arrived - when its last audio was spoken (the end of the
  utterance in the stream, from the same VAD the server runs). Also: how long after the last
  window the stream was complete (``SUCCESS``).
- **burst**: the same WAV over the websocket as fast as the server takes it; its real-time
  factor = wall time from the first window to ``SUCCESS`` / audio duration.
- **file**: the same WAV as a file, ``POST /api/transcribe_files/`` with ``wait=true``; its
  real-time factor, the baseline.
Per-stage medians over the utterance jobs (from their bus events) show where latency goes.

    .venv/bin/python -m bench.harf_stream [--sentences 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
import uuid
import wave
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
from websockets.asyncio.client import connect

from functions.api.harf import WS_PATH
from functions.api.stream_vad import UtteranceCutter
from functions.api.wav_stream import WavFormat, WavStreamReader, pcm_to_mono, wav_header
from functions.common.settings import Settings
from tests.integration.pipeline import Pipeline, embedded_pipeline
from tests.speech import espeak_wav

SENTENCES = [
    "The weather today is sunny with a light breeze.",
    "Please send the report to the finance team before noon.",
    "Our meeting starts in the main hall after lunch.",
    "Bring your laptop and the printed agenda with you.",
    "We will review the budget for the next year.",
    "The new office opens in the spring.",
    "Every team will move to the third floor.",
    "Thank you all for coming today.",
]
WINDOW = 32_000
BYTES_PER_S = 32_000


@dataclass
class StreamRun:
    wall_s: float = 0.0
    after_end_s: float = 0.0  # from the last window sent to SUCCESS
    arrivals: list[tuple[float, str]] = field(default_factory=list)  # (seconds since start, start)


def recording(tmp: Path, sentences: list[str]) -> Path:
    pcm = b""
    for i, sentence in enumerate(sentences):
        with wave.open(str(espeak_wav(sentence, "en-us", tmp / f"s{i}.wav"))) as w:
            pcm += w.readframes(w.getnframes()) + b"\0" * BYTES_PER_S  # a one-second pause
    path = tmp / "live.wav"
    path.write_bytes(wav_header(WavFormat(1, 16000), len(pcm)) + pcm)
    return path


def utterance_bounds(wav: Path, settings: Settings) -> list[tuple[float, float]]:
    """Where the server's VAD cuts this audio (the same code, the same settings)."""
    reader = WavStreamReader()
    cutter = UtteranceCutter(settings.harf_stream_min_silence_s, settings.harf_stream_max_utterance_s)
    pcm = reader.feed(wav.read_bytes())
    assert reader.format is not None
    cut = [*cutter.feed(pcm_to_mono(pcm, reader.format)), *cutter.flush()]
    return [(u.start_s, u.end_s) for u in cut]


async def stream(pipeline: Pipeline, wav: Path, paced: bool) -> StreamRun:
    data = wav.read_bytes()
    windows = [data[i : i + WINDOW] for i in range(0, len(data), WINDOW)]
    uri = pipeline.api_url.replace("http://", "ws://") + WS_PATH + "?language=en"
    run, sent = StreamRun(), set()
    async with connect(uri, additional_headers={"Authorization": f"Token {pipeline.api_key}"}) as ws:
        started = time.monotonic()
        for n, window in enumerate(windows):
            if paced:
                await asyncio.sleep(max(0.0, started + n * WINDOW / BYTES_PER_S - time.monotonic()))
            await ws.send(window)
            reply = json.loads(await ws.recv())
            if "segment_id" in reply:
                run.arrivals.append((time.monotonic() - started, reply["start"]))
                sent.add(reply["segment_id"])
        last_sent = time.monotonic()
        await ws.send("finalize")
        final = json.loads(await ws.recv())  # the whole transcript: count the segments not yet heard
        at = time.monotonic() - started
        run.arrivals += [(at, s["start"]) for s in final["segments"] if s["segment_id"] not in sent]
        run.wall_s, run.after_end_s = time.monotonic() - started, time.monotonic() - last_sent
    return run


async def as_file(pipeline: Pipeline, wav: Path) -> float:
    headers = {"Authorization": f"Token {pipeline.api_key}"}
    async with httpx.AsyncClient(base_url=pipeline.api_url, headers=headers, timeout=600) as api:
        started = time.perf_counter()
        response = await api.post(
            "/api/transcribe_files/", files={"media": ("live.wav", wav.read_bytes(), "audio/wav")},
            data={"language": "en"},
        )  # fmt: skip
        response.raise_for_status()
        assert isinstance(response.json(), list), response.text
        return time.perf_counter() - started


def latencies(run: StreamRun, bounds: list[tuple[float, float]]) -> list[float]:
    """First segment of each utterance: arrival - the utterance's end in the stream."""
    firsts: dict[int, float] = {}
    for at, start in run.arrivals:
        h, m, s = (int(x) for x in start.split(":"))
        nearest = min(range(len(bounds)), key=lambda i: abs(bounds[i][0] + 0.2 - (h * 3600 + m * 60 + s)))
        firsts.setdefault(nearest, at)
    return [firsts[i] - bounds[i][1] for i in sorted(firsts)]


def stage_medians(pipeline: Pipeline, since: float) -> dict[str, float]:
    """Per utterance job: submitted → queued (S3 event, ingest) → started → completed (engine)."""
    stages: dict[str, list[float]] = {"submit→queued": [], "queued→started": [], "started→completed": []}
    for job_id, events in pipeline.watch.seen.items():
        times = {e.type: e.time.timestamp() for e in events}
        try:
            created = uuid.UUID(job_id).int >> 80
        except ValueError:
            continue
        if created / 1000 < since or "job.completed" not in times or "job.queued" not in times:
            continue
        stages["submit→queued"].append(times["job.queued"] - created / 1000)
        stages["queued→started"].append(times["job.started"] - times["job.queued"])
        stages["started→completed"].append(times["job.completed"] - times["job.started"])
    return {k: statistics.median(v) for k, v in stages.items() if v}


async def measure(sentences: int) -> None:
    with tempfile.TemporaryDirectory(prefix="shenava-bench-") as tmp:
        wav = recording(Path(tmp), SENTENCES[:sentences])
        async with embedded_pipeline(Path(tmp)) as pipeline:
            await as_file(pipeline, wav)  # warm-up: the worker's model, the first S3 writes
            since = datetime.now(UTC).timestamp()
            live = await stream(pipeline, wav, paced=True)
            stages = stage_medians(pipeline, since)
            burst = await stream(pipeline, wav, paced=False)
            file_s = await as_file(pipeline, wav)
        report(live, burst, file_s, seconds_of(wav), utterance_bounds(wav, pipeline.settings), stages)


def seconds_of(wav: Path) -> float:
    with wave.open(str(wav)) as w:
        return w.getnframes() / w.getframerate()


def report(
    live: StreamRun, burst: StreamRun, file_s: float, audio_s: float,
    bounds: list[tuple[float, float]], stages: dict[str, float],
) -> None:  # fmt: skip
    lat = latencies(live, bounds)
    print(f"audio: {audio_s:.1f} s of English speech, {len(bounds)} utterances by the VAD")
    print(f"live   latency end of utterance → segment: median {statistics.median(lat):5.2f} s, "
          f"max {max(lat):5.2f} s  ({len(lat)} utterances)")  # fmt: skip
    print(f"live   complete {live.after_end_s:5.2f} s after the last window "
          f"(real-time factor {live.wall_s / audio_s:.3f} incl. the real-time pacing)")  # fmt: skip
    burst_rtf = burst.wall_s / audio_s
    print(f"burst  websocket as fast as taken: {burst.wall_s:6.2f} s  (real-time factor {burst_rtf:.3f})")
    print(f"file   POST wait=true            : {file_s:6.2f} s  (real-time factor {file_s / audio_s:.3f})")
    print(f"ratio  burst stream / file       : {burst.wall_s / file_s:6.2f}x")
    print("utterance jobs, median per stage: " + ", ".join(f"{k} {v:.2f} s" for k, v in stages.items()))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.harf_stream")
    parser.add_argument("--sentences", type=int, default=len(SENTENCES), help="how many (about 4 s each)")
    args = parser.parse_args()
    asyncio.run(measure(args.sentences))


if __name__ == "__main__":
    main()
