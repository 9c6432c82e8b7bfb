"""The coverage rule and the language fallback, with a scripted model in place of Whisper.

The scripted model recognises a window by the speech regions its audio holds (each region's
samples carry the region's own marker value) and answers from a script: per set of regions, a
reading (text, tokens, probabilities) and the times of its words in the window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pytest

from functions.common.transcript import Word
from functions.transcribe.audio import SAMPLE_RATE, Audio
from functions.transcribe.guard import Attempt, Decoding, Flag, ladder
from functions.transcribe.reading import ChannelReader, Encoded, Read
from functions.transcribe.vad import Region, pack_windows

A, B = Region(0.0, 3.0), Region(5.0, 8.0)
DURATION_S = 9.0


@dataclass(frozen=True)
class Line:
    """What the script says for one window: its reading and its words (text, start, end in the window)."""

    decoding: Decoding
    words: tuple[tuple[str, float, float], ...] = ()


def line(words: Sequence[tuple[str, float, float]], logprob: float = -0.3, no_speech: float = 0.02) -> Line:
    text = "".join(f" {w}" for w, _, _ in words)
    tokens = tuple(range(1, len(words) + 1))
    return Line(Decoding(text, tokens, logprob, no_speech), tuple(words))


def audio_of(regions: Sequence[Region]) -> Audio:
    """Silence, with each region's samples set to its marker (its index + 1, scaled)."""
    audio = np.zeros(round(DURATION_S * SAMPLE_RATE), dtype=np.float32)
    for n, r in enumerate(regions, start=1):
        audio[round(r.start * SAMPLE_RATE) : round(r.end * SAMPLE_RATE)] = n / 100
    return audio


@dataclass
class ScriptedModel:
    """A ``WindowModel`` answering from a script keyed by (language, regions heard)."""

    script: dict[tuple[str, frozenset[int]], Line]
    read: list[tuple[str, frozenset[int]]] = field(default_factory=list)

    def encode(self, windows: Sequence[Audio], window_s: float = 30.0) -> list[Encoded]:
        return [np.asarray(w, dtype=np.float32) for w in windows]

    def language_probabilities(self, encoded: Sequence[Encoded]) -> list[dict[str, float]]:
        return [{"en": 1.0} for _ in encoded]

    def reader(self, encoded: Sequence[Encoded], seconds: Sequence[float], language: str, hints: str | None):
        model = self

        class Reader:
            def decode(self, indexes: Sequence[int], attempt: Attempt) -> list[Decoding]:
                keys = [(language, _heard(encoded[i])) for i in indexes]
                model.read += keys
                return [model.script[k].decoding for k in keys]

        return Reader()

    def words(self, encoded, language, tokens, durations) -> list[list[Word]]:  # type: ignore[no-untyped-def]
        out = []
        for enc, kept in zip(encoded, tokens, strict=True):
            words = self.script[(language, _heard(enc))].words
            out.append([Word(text=f" {w}", start=s, end=e, confidence=0.9) for w, s, e in words][: len(kept)])
        return out


def _heard(encoded: Encoded) -> frozenset[int]:
    return frozenset(round(float(v) * 100) for v in np.unique(encoded) if v > 0)


def read_all(model: ScriptedModel, languages: list[str] | None = None) -> list[Read]:
    return reading(model, languages)[1]


def reading(model: ScriptedModel, languages: list[str] | None = None) -> tuple[ChannelReader, list[Read]]:
    regions = [A, B]
    windows = pack_windows(regions)
    audio = audio_of(regions)
    reader = ChannelReader(model, audio, languages or ["en"], None, ladder(1))
    first = model.encode([w.audio(audio) for w in windows])
    return reader, [r for batch in reader.batches(windows, 8, first) for r in batch]


BOTH = frozenset({1, 2})
ONE_ONLY = line([("Please", 0.5, 1.0), ("hold.", 1.1, 2.5)])  # words in A's part of the window only


def test_speech_no_word_covers_is_read_again_on_its_own() -> None:
    model = ScriptedModel({
        ("en", BOTH): ONE_ONLY,
        ("en", frozenset({2})): line([("Goodbye", 0.6, 1.2), ("now.", 1.3, 2.0)]),
    })  # fmt: skip

    reads = read_all(model)

    words = [(w.text.strip(), w.start, w.end) for r in reads for w in r.words]
    assert words == [("Please", 0.5, 1.0), ("hold.", 1.1, 2.5), ("Goodbye", 5.6, 6.2), ("now.", 6.3, 7.0)]
    assert model.read == [("en", BOTH), ("en", frozenset({2}))]
    assert not any(r.silent for r in reads)


def test_a_region_whisper_hears_nothing_in_becomes_an_explicit_no_speech_decision() -> None:
    model = ScriptedModel({
        ("en", BOTH): ONE_ONLY,
        ("en", frozenset({2})): line([("Thank", 0.2, 0.4), ("you.", 0.4, 0.6)], logprob=-1.6, no_speech=0.9),
    })  # fmt: skip

    reads = read_all(model)

    assert [r.silent for r in reads if r.silent] == [(B,)]
    assert [w.text.strip() for r in reads for w in r.words] == ["Please", "hold."]


def test_a_stock_phrase_read_from_a_lone_region_is_not_believed() -> None:
    # Plausible enough for the guard, not plainly speech: a lone noise tempts Whisper into this.
    model = ScriptedModel({
        ("en", BOTH): ONE_ONLY,
        ("en", frozenset({2})): line([("Thank", 0.2, 0.4), ("you.", 0.4, 0.6)], logprob=-0.9, no_speech=0.4),
    })  # fmt: skip

    reads = read_all(model)

    assert [r.silent for r in reads if r.silent] == [(B,)]
    assert "Thank" not in " ".join(w.text for r in reads for w in r.words)


def test_covered_speech_is_read_once() -> None:
    model = ScriptedModel({("en", BOTH): line([("Please", 0.5, 2.0), ("hold.", 4.0, 5.5)])})

    reads = read_all(model)

    assert model.read == [("en", BOTH)]
    # The window shortened the 2 s pause to 0.6 s: 4.0 s into it is 5.4 s into the file.
    assert [(w.text.strip(), w.start) for r in reads for w in r.words] == [
        ("Please", 0.5), ("hold.", pytest.approx(5.4)),
    ]  # fmt: skip


def test_a_window_judged_silent_by_beam_search_too_is_not_read_again() -> None:
    silence = line([("Bye.", 0.1, 0.3)], logprob=-1.8, no_speech=0.95)
    model = ScriptedModel({("en", BOTH): silence})

    reads = read_all(model)

    assert model.read == [("en", BOTH), ("en", BOTH)]  # greedy, then beam search; no region re-read
    assert reads == [Read([], frozenset({Flag.NO_SPEECH}), (A, B))]


@pytest.mark.parametrize("fixed", [True, False])
def test_broken_text_in_a_detected_language_gives_way_to_the_runner_up(fixed: bool) -> None:
    broken = line([("สวัส\ufffd", 0.5, 2.0), ("ดี", 5.0, 5.5)])
    model = ScriptedModel({
        ("th", BOTH): broken,
        ("pt", BOTH): line([("Bom", 0.5, 1.0), ("dia.", 4.0, 5.5)]) if fixed else broken,
    })  # fmt: skip

    reader, (read,) = reading(model, ["th", "pt"])

    if fixed:
        assert [w.text.strip() for w in read.words] == ["Bom", "dia."]
        assert not read.flags
        assert reader.language == "pt"  # the transcript says what its text was read in
    else:
        assert "\ufffd" not in "".join(w.text for w in read.words)  # the bytes go, the flag stays
        assert Flag.BROKEN_TEXT in read.flags
        assert reader.language == "th"
