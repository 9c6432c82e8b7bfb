"""Accuracy and speed of the pipeline against WhisperX's own ``transcribe``: same audio, same
model, one run.

For every item of ``bench.wer_corpus`` (real human speech in five languages, long files,
espeak-ng Portuguese and Persian):

- **whisperx**: ``whisperx.load_model`` on the bundled base model (int8, CPU, the machine's
  cores), then per file ``load_audio`` + ``transcribe(audio, batch_size=8, language=…)``:
  WhisperX's defaults (its pyannote VAD, beam search of 5).
- **pipeline**: the whole of Shenava on its embedded stack (SeaweedFS, bridge, NATS, ingest, a
  transcribe worker process, the API): ``POST /v1/recognitions?language=…`` (the Watson dialect)
  until ``job.completed`` is on the bus, then the transcript from the state bucket. With
  ``--engine`` the engine is called in this process instead (quicker, for tuning).

Both are warmed up on one file first and never run at the same time. Per file: WER (Whisper's
normalisers, ``tests.scoring``), words out against the reference's, sentences lost (less than half
their words found), the longest run of one repeated word sequence (reference / out), wall time.
Per group: WER pooled over its files (errors / reference words) and the mean of per-file WER;
the sentences the pipeline lost where WhisperX kept them; and how sure the WER difference is (a
paired bootstrap over the group's files: at two dozen short prompts a group, a few words either
way are within chance).
Then language detection: the short files again with no language given, how many each gets right.

    .venv/bin/python -m bench.wer [--groups en,es,fr,it,ru,pt,fa,long] [--engine] [--no-detect] [--short N]
                                  [--texts out.jsonl]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from bench.wer_corpus import SHORT_PER_LANGUAGE, Item, corpus
from tests.scoring import errors, longest_run, lost_sentences, wer, words_of

Transcriber = Callable[[Item, str | None], Awaitable["Output"]]
SYSTEMS = ("pipeline", "whisperx")


@dataclass(frozen=True)
class Output:
    text: str
    language: str
    wall_s: float


@dataclass(frozen=True)
class Score:
    wer: float
    errors: int
    words: int
    lost: tuple[str, ...]  # the reference sentences less than half of which was found
    run: int
    wall_s: float


def score(item: Item, out: Output) -> Score:
    return Score(
        wer=wer(item.reference, out.text, item.language),
        errors=errors(item.reference, out.text, item.language),
        words=len(words_of(out.text, item.language)),
        lost=tuple(lost_sentences(item.sentences, out.text, item.language)),
        run=longest_run(out.text, item.language),
        wall_s=out.wall_s,
    )


class WhisperX:
    """WhisperX's own pipeline, as its README runs it."""

    def __init__(self) -> None:
        import logging
        import os

        import whisperx  # type: ignore[import-untyped]

        from functions.common.settings import Settings
        from functions.transcribe.model_cache import bundled_model_dir

        self._whisperx = whisperx
        logging.getLogger("whisperx").setLevel(logging.ERROR)  # one line per file otherwise
        self._model = whisperx.load_model(
            str(bundled_model_dir(Settings().model_cache)), device="cpu", compute_type="int8",
            threads=len(os.sched_getaffinity(0)), local_files_only=True,
        )  # fmt: skip

    async def __call__(self, item: Item, language: str | None) -> Output:
        started = time.perf_counter()
        audio = self._whisperx.load_audio(str(item.wav))
        result = self._model.transcribe(audio, batch_size=8, language=language)
        text = " ".join(s["text"].strip() for s in result["segments"])
        return Output(text, str(result["language"]), time.perf_counter() - started)


@contextlib.asynccontextmanager
async def shenava_pipeline(workdir: Path) -> AsyncIterator[Transcriber]:
    """The whole pipeline on its embedded stack, reached through the Watson dialect."""
    import httpx

    from functions.common.bootstrap import bootstrap
    from functions.common.jobs import result_key
    from functions.common.transcript import Transcript
    from tests.integration.pipeline import embedded_pipeline

    async with (
        embedded_pipeline(workdir) as pipeline,
        bootstrap(pipeline.settings) as deps,
        httpx.AsyncClient(base_url=pipeline.api_url, headers=pipeline.auth(), timeout=900) as api,
    ):

        async def transcribe(item: Item, language: str | None) -> Output:
            params = {"language": language} if language else {}
            started = time.perf_counter()
            response = await api.post(
                "/v1/recognitions", params=params, content=item.wav.read_bytes(),
                headers={"Content-Type": "audio/wav"},
            )  # fmt: skip
            response.raise_for_status()
            job_id = response.json()["id"]
            event = await pipeline.watch.wait(job_id, "job.completed", "job.failed", timeout=900)
            wall = time.perf_counter() - started
            if event.type == "job.failed":
                return Output("", "", wall)
            found = await deps.state.get(result_key("acme", job_id))
            transcript = Transcript.model_validate(found[0] if found else {})
            return Output(transcript.text, transcript.language, wall)

        yield transcribe


@contextlib.asynccontextmanager
async def shenava_engine(_: Path) -> AsyncIterator[Transcriber]:
    """The engine alone, in this process (``--engine``)."""
    from functions.common.asr import TranscribeOptions
    from functions.common.probe import normalise
    from functions.common.settings import Settings
    from functions.transcribe.engine import WhisperEngine

    engine = WhisperEngine(Settings(asr_model="", asr_align_model="", asr_diarize_model=""))

    async def transcribe(item: Item, language: str | None) -> Output:
        started = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            wav = Path(tmp) / "audio.wav"
            await normalise(item.wav, wav)  # what ingest does
            run = engine.transcribe_channel(wav, 0, TranscribeOptions(language=language))
            text = " ".join(s.text for s in run.segments() if s.text)
        return Output(text, run.language, time.perf_counter() - started)

    yield transcribe


async def measure(items: list[Item], engine_only: bool, detect: bool, texts: Path | None) -> None:
    whisperx = WhisperX()
    with tempfile.TemporaryDirectory(prefix="shenava-bench-") as tmp:
        ours = shenava_engine if engine_only else shenava_pipeline
        async with ours(Path(tmp)) as pipeline:
            systems: dict[str, Transcriber] = {"pipeline": pipeline, "whisperx": whisperx}
            for run in systems.values():  # warm-up: first calls load and compile
                await run(items[0], items[0].language)
            scores: dict[str, dict[str, Score]] = {name: {} for name in SYSTEMS}
            saved = texts.open("w", encoding="utf-8") if texts else None
            for item in items:
                for name, run in systems.items():
                    out = await run(item, item.language)
                    scores[name][item.name] = score(item, out)
                    if saved:
                        row = {
                            "item": item.name,
                            "system": name,
                            "reference": item.reference,
                            "text": out.text,
                        }
                        saved.write(json.dumps(row, ensure_ascii=False) + "\n")
                print_item(item, scores)
            if saved:
                saved.close()
            report(items, scores)
            if detect:
                await detection(items, systems)


def print_item(item: Item, scores: dict[str, dict[str, Score]]) -> None:
    p, w = scores["pipeline"][item.name], scores["whisperx"][item.name]
    ref_run = longest_run(item.reference, item.language)
    print(
        f"{item.name:34.34} {item.seconds:6.1f}s  WER {p.wer:5.3f} {w.wer:5.3f}  "
        f"words {len(words_of(item.reference, item.language)):4d} {p.words:4d} {w.words:4d}  "
        f"lost {len(p.lost):2d} {len(w.lost):2d}  run {ref_run} {p.run} {w.run}  "
        f"wall {p.wall_s:6.2f} {w.wall_s:6.2f}",
        flush=True,
    )


def report(items: list[Item], scores: dict[str, dict[str, Score]]) -> None:
    print("\n(per system: pipeline then whisperx)")
    print(
        f"{'group':6} {'files':>5}  {'pooled WER':>13}  {'mean WER':>13}  {'lost':>7}  {'runs>3':>7}  "
        f"{'wall s':>15}  {'lost by the pipeline alone':>26}  pooled WER difference, 95 % interval"
    )
    for group in dict.fromkeys(i.group for i in items):
        members = [i for i in items if i.group == group]
        ref_words = sum(len(words_of(i.reference, i.language)) for i in members)
        cols = []
        for name in SYSTEMS:
            s = [scores[name][i.name] for i in members]
            loops = sum(
                1
                for i, x in zip(members, s, strict=True)
                if x.run > 3 >= longest_run(i.reference, i.language)
            )
            cols.append(
                (sum(x.errors for x in s) / max(ref_words, 1), statistics.mean(x.wer for x in s),
                 sum(len(x.lost) for x in s), loops, sum(x.wall_s for x in s))
            )  # fmt: skip
        (pw, pm, pl, pr, pt), (ww, wm, wl, wr, wt) = cols
        alone = sum(
            len(set(scores["pipeline"][i.name].lost) - set(scores["whisperx"][i.name].lost)) for i in members
        )
        low, high = difference_interval(members, scores)
        print(
            f"{group:6} {len(members):5d}  {pw:6.3f} {ww:6.3f}  {pm:6.3f} {wm:6.3f}  {pl:3d} {wl:3d}  "
            f"{pr:3d} {wr:3d}  {pt:7.1f} {wt:7.1f}  {alone:26d}  {pw - ww:+.3f} [{low:+.3f}, {high:+.3f}]"
        )
    for item in (i for i in items if i.group == "long"):
        p, w = scores["pipeline"][item.name], scores["whisperx"][item.name]
        print(
            f"{item.name}: {item.seconds:.0f} s of audio; pipeline {p.wall_s:.1f} s "
            f"({item.seconds / p.wall_s:.1f}x realtime), whisperx {w.wall_s:.1f} s "
            f"({item.seconds / w.wall_s:.1f}x realtime); pipeline/whisperx wall {p.wall_s / w.wall_s:.2f}"
        )


def difference_interval(
    members: list[Item], scores: dict[str, dict[str, Score]], resamples: int = 2000
) -> tuple[float, float]:
    """A paired bootstrap over the group's files: the 2.5th and 97.5th percentiles of pooled WER
    (pipeline) minus pooled WER (whisperx) when the files are drawn again with replacement. An
    interval that holds 0 is a difference the sample cannot tell from chance."""
    rows = [
        (
            scores["pipeline"][i.name].errors,
            scores["whisperx"][i.name].errors,
            len(words_of(i.reference, i.language)),
        )
        for i in members
    ]
    draw = random.Random(0)  # the same interval for the same scores
    differences = []
    for _ in range(resamples):
        sample = draw.choices(rows, k=len(rows))
        words = max(1, sum(n for _, _, n in sample))
        differences.append((sum(p for p, _, _ in sample) - sum(w for _, w, _ in sample)) / words)
    differences.sort()
    return differences[int(0.025 * resamples)], differences[int(0.975 * resamples) - 1]


async def detection(items: list[Item], systems: dict[str, Transcriber]) -> None:
    short = [i for i in items if i.group != "long"]
    right: dict[str, int] = {name: 0 for name in SYSTEMS}
    wrong: dict[str, list[str]] = {name: [] for name in SYSTEMS}
    for item in short:
        for name, run in systems.items():
            found = (await run(item, None)).language
            if found == item.language:
                right[name] += 1
            else:
                wrong[name].append(f"{item.name}→{found or '?'}")
    print(f"\nlanguage detection on {len(short)} short files (no language given):")
    for name in SYSTEMS:
        print(f"  {name:9} {right[name]:3d} right  wrong: {', '.join(wrong[name]) or 'none'}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.wer")
    parser.add_argument("--groups", default="", help="comma-separated: en,es,fr,it,ru,pt,fa,long (all)")
    parser.add_argument("--engine", action="store_true", help="the engine in this process, not the pipeline")
    parser.add_argument("--no-detect", action="store_true", help="skip the language detection pass")
    parser.add_argument(
        "--short",
        type=int,
        default=SHORT_PER_LANGUAGE,
        help=f"single prompts per human language ({SHORT_PER_LANGUAGE}; 0: every held-out one, about 100)",
    )
    parser.add_argument("--texts", type=Path, help="also write every transcript here (JSON lines)")
    args = parser.parse_args()
    groups = {g.strip() for g in args.groups.split(",") if g.strip()} or None
    asyncio.run(measure(corpus(groups, args.short), args.engine, not args.no_detect, args.texts))


if __name__ == "__main__":
    main()
