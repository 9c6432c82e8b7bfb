"""TRD v3 configuration: the VAD chunk settings and max_sentences are honoured, in stated units."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from functions.api.trd_config import parse_config, recognition_options
from functions.common.asr import MAX_CHUNK_S, TranscribeOptions
from functions.common.errors import Unprocessable
from functions.common.jobs import JobDocument, RecognitionOptions
from functions.common.render_trd import render_segment
from functions.common.transcript import Alternative, Segment, Word
from functions.ingest import handler as ingest
from functions.transcribe import handler as transcribe
from tests.fakes import ScriptedEngine, memory_deps
from tests.unit.test_handlers import tone, uploaded


def options(config: dict) -> RecognitionOptions:
    return recognition_options(parse_config(json.dumps(config)))


def test_defaults_read_as_1200_ms_of_pause_and_36_s_of_chunk() -> None:
    default = recognition_options(parse_config(None))
    assert (default.max_silence_s, default.max_chunk_s, default.alternatives) == (1.2, 36.0, 1)


def test_vad_chunk_settings_are_honoured_in_ms_and_10_ms_frames() -> None:
    chosen = options({"diarization": {"vad": {"chunk_max_silence": 350, "chunk_max_length": 450}}})
    assert (chosen.max_silence_s, chosen.max_chunk_s) == (0.35, 4.5)
    assert options({"recognition": {"decoder": {"max_sentences": 3}}}).alternatives == 3


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"diarization": {"vad": {"chunk_max_silence": 0}}}, "config.diarization.vad.chunk_max_silence"),
        ({"diarization": {"vad": {"chunk_max_silence": -1}}}, "config.diarization.vad.chunk_max_silence"),
        ({"diarization": {"vad": {"chunk_max_length": 0}}}, "config.diarization.vad.chunk_max_length"),
        ({"diarization": {"vad": {"chunk_max_length": 99}}}, "config.diarization.vad.chunk_max_length"),
        ({"recognition": {"decoder": {"max_sentences": 0}}}, "config.recognition.decoder.max_sentences"),
        ({"recognition": {"decoder": {"max_sentences": 11}}}, "config.recognition.decoder.max_sentences"),
    ],
)
def test_out_of_range_values_are_422_naming_the_field(config: dict, field: str) -> None:
    with pytest.raises(Unprocessable) as refused:
        options(config)
    assert field in str(refused.value)


def test_what_is_still_not_honoured_is_still_refused() -> None:
    with pytest.raises(Unprocessable, match=r"dual_tone\.enabled"):
        options({"diarization": {"vad": {"chunk_max_silence": 500, "dual_tone": {"enabled": True}}}})


def test_further_alternatives_follow_the_first_without_words() -> None:
    word = Word(text="olá", start=0.1, end=0.4, confidence=0.9)
    segment = Segment(
        start=0.1, end=0.4, text="olá", confidence=0.9, words=(word,),
        alternatives=(Alternative(text=" ola ", confidence=0.5), Alternative(text="hola", confidence=0.2)),
    )  # fmt: skip
    rendered = render_segment(segment, "lm", word_details=True)["alternatives"]
    assert [(a["text"], a["score"], len(a["words"])) for a in rendered] == [
        ("olá", 90, 1), ("ola", 50, 0), ("hola", 20, 0),
    ]  # fmt: skip
    assert {a["lm"] for a in rendered} == {"lm"}


async def engine_options(tmp_path: Path, chosen: RecognitionOptions | None) -> TranscribeOptions:
    """What the transcribe handler asks of the engine for a job with these options."""
    engine = ScriptedEngine({0: ["um"]})
    async with memory_deps(tmp_path, engine=engine) as deps:
        job, event = await uploaded(deps, tone(tmp_path / "s.wav"))

        def configure(current: JobDocument) -> bool:
            current.options = chosen or current.options
            return True

        await deps.jobs.change(job.tenant, job.id, configure)
        [queued] = await ingest.handle(event, deps)
        [started] = await transcribe.handle(queued, deps)
        await transcribe.handle(started, deps)
    [(_, given)] = engine.calls
    return given


async def test_the_job_options_reach_the_engine(tmp_path: Path) -> None:
    chosen = options({"diarization": {"vad": {"chunk_max_silence": 700, "chunk_max_length": 500}},
                      "recognition": {"decoder": {"max_sentences": 2}}})  # fmt: skip
    given = await engine_options(tmp_path, chosen)
    assert (given.max_silence_s, given.max_chunk_s, given.alternatives) == (0.7, 5.0, 2)


async def test_a_job_from_another_dialect_keeps_whispers_segments(tmp_path: Path) -> None:
    given = await engine_options(tmp_path, None)
    assert (given.max_silence_s, given.max_chunk_s, given.alternatives) == (None, MAX_CHUNK_S, 1)
