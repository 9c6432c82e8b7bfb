"""Live transcription over the Harf websocket: latency from the end of an utterance to its segment.

One run on the real embedded stack (SeaweedFS, bridge, NATS, ingest, a transcribe worker and a
live worker process, the API: ``tests.integration.pipeline``), one audio: English espeak-ng
sentences with a one-second pause after each, 16 kHz mono, so every sentence is one utterance.

- Each stream sends the WAV over ``/ws_api/transcribe_files/wav/sync/`` in 0.1 s windows paced
  at real time, as a microphone would, and timestamps every reply. An utterance's latency = when
  its segment arrived - when its last speech was sent (the end of the utterance the server's own
  VAD finds, less the 0.2 s of pause it keeps). Replies come one per window, so a latency is
  known to within 0.1 s.
- Words lost: each stream's words against the same audio transcribed as a file
  (``POST /api/transcribe_files/``): words of the file transcript missing from the stream's
  (deletions in the alignment), a measure of what endpointing clips.
- Scenarios: one stream; 2 and 4 streams at once; one stream while a 5-minute file job is being
  transcribed on the same 2 cores (the file worker runs at a lower CPU priority:
  ``SHENAVA_TRANSCRIBE_NICE``).

    .venv/bin/python -m bench.harf_stream [--sentences 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import jiwer
from websockets.asyncio.client import connect

from functions.api.harf import WS_PATH
from functions.api.stream_vad import PAD_S, UtteranceCutter
from functions.api.wav_stream import WavFormat, WavStreamReader, pcm_to_mono, wav_header
from functions.common.settings import Settings
from tests.integration.pipeline import Pipeline, embedded_pipeline
from tests.scoring import normaliser
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
BYTES_PER_S = 32_000
WINDOW = BYTES_PER_S // 10  # 0.1 s


@dataclass
class StreamRun:
    arrivals: list[tuple[float, str, str]] = field(default_factory=list)  # (seconds from start, start, text)
    text: str = ""


def recording(tmp: Path, sentences: list[str]) -> Path:
    pcm = b""
    for i, sentence in enumerate(sentences):
        with wave.open(str(espeak_wav(sentence, "en-us", tmp / f"s{i}.wav"))) as w:
            pcm += w.readframes(w.getnframes()) + b"\0" * BYTES_PER_S  # a one-second pause
    path = tmp / "live.wav"
    path.write_bytes(wav_header(WavFormat(1, 16000), len(pcm)) + pcm)
    return path


def speech_ends(wav: Path, settings: Settings) -> list[tuple[float, float]]:
    """Each utterance's start and the end of its speech, as the server's VAD cuts this audio."""
    reader = WavStreamReader()
    cutter = UtteranceCutter(settings.harf_stream_min_silence_s, settings.harf_stream_max_utterance_s)
    pcm = reader.feed(wav.read_bytes())
    assert reader.format is not None
    cut = [*cutter.feed(pcm_to_mono(pcm, reader.format)), *cutter.flush()]
    return [(u.start_s, u.end_s - PAD_S) for u in cut]


async def stream(pipeline: Pipeline, wav: Path) -> StreamRun:
    data = wav.read_bytes()
    windows = [data[i : i + WINDOW] for i in range(0, len(data), WINDOW)]
    uri = pipeline.api_url.replace("http://", "ws://") + WS_PATH + "?language=en"
    run, seen = StreamRun(), set()
    async with connect(uri, additional_headers={"Authorization": f"Token {pipeline.api_key}"}) as ws:
        started = time.monotonic()
        for n, window in enumerate(windows):
            # the window holds audio up to (n + 1) * 0.1 s of the stream: send it when that is "now"
            await asyncio.sleep(max(0.0, started + (n + 1) * WINDOW / BYTES_PER_S - time.monotonic()))
            await ws.send(window)
            reply = json.loads(await ws.recv())
            if "segment_id" in reply:
                run.arrivals.append((time.monotonic() - started, reply["start"], reply["text"]))
                seen.add(reply["segment_id"])
        await ws.send("finalize")
        final = json.loads(await ws.recv())
        at = time.monotonic() - started
        run.arrivals += [
            (at, s["start"], s["text"]) for s in final["segments"] if s["segment_id"] not in seen
        ]
        run.text = " ".join(s["text"] for s in final["segments"])
    return run


async def as_file(pipeline: Pipeline, wav: Path, wait: bool = True) -> str:
    headers = {"Authorization": f"Token {pipeline.api_key}"}
    async with httpx.AsyncClient(base_url=pipeline.api_url, headers=headers, timeout=900) as api:
        response = await api.post(
            "/api/transcribe_files/", files={"media": (wav.name, wav.read_bytes(), "audio/wav")},
            data={"language": "en", "wait": "true" if wait else "false"},
        )  # fmt: skip
        response.raise_for_status()
        body = response.json()
        return " ".join(s["text"] for task in body for s in task["segments"]) if wait else ""


def latencies(run: StreamRun, bounds: list[tuple[float, float]]) -> list[float]:
    """First segment of each utterance: its arrival - the end of the utterance's speech."""
    firsts: dict[int, float] = {}
    for at, start, _ in run.arrivals:
        h, m, s = (int(x) for x in start.split(":"))
        begins = h * 3600 + m * 60 + s
        nearest = min(range(len(bounds)), key=lambda i: abs(bounds[i][0] - begins))
        firsts.setdefault(nearest, at)
    return [firsts[i] - bounds[i][1] for i in sorted(firsts)]


def words_lost(stream_text: str, file_text: str) -> tuple[int, int]:
    """Words of the file transcript missing from the stream's, and the file transcript's words."""
    normalise = normaliser("en")
    reference, hypothesis = normalise(file_text), normalise(stream_text)
    out = jiwer.process_words(reference, hypothesis or "-")
    return int(out.deletions), len(reference.split())


async def lane_ready(pipeline: Pipeline, wav: Path) -> None:
    """Stream a sentence until the live lane (not the file path) answers it: the pipeline's live
    worker has loaded its model."""
    while True:
        started = time.monotonic()
        await stream(pipeline, wav)
        if time.monotonic() - started < seconds_of(wav) + 1.5:
            return


@dataclass
class Scenario:
    name: str
    latencies: list[float]
    lost: int
    words: int


async def scenario(name: str, pipeline: Pipeline, wav: Path, streams: int, file_text: str) -> Scenario:
    runs = await asyncio.gather(*(stream(pipeline, wav) for _ in range(streams)))
    bounds = speech_ends(wav, pipeline.settings)
    lat = [x for run in runs for x in latencies(run, bounds)]
    lost = [words_lost(run.text, file_text) for run in runs]
    return Scenario(name, lat, sum(n for n, _ in lost), sum(w for _, w in lost))


async def measure(sentences: int) -> None:
    with tempfile.TemporaryDirectory(prefix="shenava-bench-") as tmp:
        for folder in ("warm", "long"):
            (Path(tmp) / folder).mkdir()
        wav = recording(Path(tmp), SENTENCES[:sentences])
        warm = recording(Path(tmp) / "warm", SENTENCES[:1])
        long_file = recording(Path(tmp) / "long", (SENTENCES * 9)[:70])  # about 5 minutes
        async with embedded_pipeline(Path(tmp)) as pipeline:  # with a live worker
            file_text = await as_file(pipeline, wav)  # also warms the file worker
            await lane_ready(pipeline, warm)
            results = [
                await scenario("1 stream", pipeline, wav, 1, file_text),
                await scenario("2 streams", pipeline, wav, 2, file_text),
                await scenario("4 streams", pipeline, wav, 4, file_text),
            ]
            await as_file(pipeline, long_file, wait=False)  # a file job, running meanwhile
            results.append(await scenario("1 stream + a file job", pipeline, wav, 1, file_text))
        report(results, seconds_of(wav), len(speech_ends(wav, pipeline.settings)))


def seconds_of(wav: Path) -> float:
    with wave.open(str(wav)) as w:
        return w.getnframes() / w.getframerate()


def report(results: list[Scenario], audio_s: float, utterances: int) -> None:
    print(f"audio: {audio_s:.1f} s of English speech, {utterances} utterances by the VAD, 0.1 s windows")
    print(f"{'scenario':24} {'utterances':>10} {'median s':>9} {'p95 s':>7} {'max s':>7} {'words lost':>11}")
    for r in results:
        ordered = sorted(r.latencies)
        p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
        print(
            f"{r.name:24} {len(ordered):10d} {statistics.median(ordered):9.2f} {p95:7.2f} "
            f"{ordered[-1]:7.2f} {r.lost:5d} / {r.words}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.harf_stream")
    parser.add_argument("--sentences", type=int, default=len(SENTENCES), help="how many (about 3 s each)")
    args = parser.parse_args()
    asyncio.run(measure(args.sentences))


if __name__ == "__main__":
    main()
