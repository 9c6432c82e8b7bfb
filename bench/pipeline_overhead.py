"""What the pipeline costs on top of the engine: the same audio, the same run, two ways.

- baseline: the engine (``WhisperEngine``) called directly in this process on the 16 kHz WAV;
- pipeline: ``POST /v1/recognitions`` on the real embedded stack (SeaweedFS, bridge, NATS,
  ingest, a transcribe worker process, notify) until ``job.completed`` is on the bus.

Both engines are warmed up first (model loads are not counted) and run one after the other,
never at once. Prints medians and the ratio pipeline / baseline.

    .venv/bin/python -m bench.pipeline_overhead [--runs 3] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from functions.common.asr import TranscribeOptions
from functions.transcribe.engine import WhisperEngine
from tests.integration.pipeline import Pipeline, embedded_pipeline
from tests.speech import espeak_wav

SENTENCE = "The weather today is sunny with a light breeze. Please send the report to the finance team. "


def direct(engine: WhisperEngine, wav: Path) -> float:
    started = time.perf_counter()
    run = engine.transcribe_channel(wav, 0, TranscribeOptions(language="en"))
    list(run.segments())
    return time.perf_counter() - started


async def through_pipeline(pipeline: Pipeline, audio: bytes) -> float:
    async with httpx.AsyncClient(base_url=pipeline.api_url, headers=pipeline.auth(), timeout=60) as api:
        started = time.perf_counter()
        response = await api.post(
            "/v1/recognitions",
            params={"language": "en"},
            content=audio,
            headers={"Content-Type": "audio/wav"},
        )
        response.raise_for_status()
        await pipeline.watch.wait(response.json()["id"], "job.completed", timeout=600)
        return time.perf_counter() - started


async def measure(runs: int, seconds: float) -> None:
    with tempfile.TemporaryDirectory(prefix="shenava-bench-") as tmp:
        repeats = max(1, round(seconds / 5))
        wav = espeak_wav(SENTENCE * repeats, "en-us", Path(tmp) / "speech.wav")
        async with embedded_pipeline(Path(tmp)) as pipeline:
            engine = WhisperEngine(pipeline.settings)
            audio = wav.read_bytes()
            direct(engine, wav), await through_pipeline(pipeline, audio)  # warm-up
            baseline = [direct(engine, wav) for _ in range(runs)]
            piped = [await through_pipeline(pipeline, audio) for _ in range(runs)]
            audio_s = seconds_of(wav)
    report(baseline, piped, audio_s)


def seconds_of(wav: Path) -> float:
    import wave

    with wave.open(str(wav)) as w:
        return w.getnframes() / w.getframerate()


def report(baseline: list[float], piped: list[float], audio_s: float) -> None:
    b, p = statistics.median(baseline), statistics.median(piped)
    print(f"audio: {audio_s:.1f} s of English speech, {len(baseline)} runs each (medians)")
    print(f"baseline  engine direct   : {b:6.2f} s  (real-time factor {b / audio_s:.3f})")
    print(f"pipeline  API → completed : {p:6.2f} s  (real-time factor {p / audio_s:.3f})")
    print(f"ratio pipeline / baseline : {p / b:6.2f}x   overhead {p - b:+.2f} s per job")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.pipeline_overhead")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0, help="about how much speech")
    args = parser.parse_args()
    asyncio.run(measure(args.runs, args.seconds))


if __name__ == "__main__":
    main()
