"""The quality guard with scripted readings: what it flags, what it reads again, what it keeps."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from functions.transcribe.guard import (
    Attempt,
    Decoding,
    Flag,
    compression_ratio,
    decode_guarded,
    judge,
    ladder,
    longest_repeat,
)

GOOD = "Thank you for calling the help desk, how can I help you today?"
LOOP = "a minha filha, a seu de manhã, os tautas e tautas e tautas e tautas e tautas e"
MENU = " ".join(
    f"Press {n} if you want this caller to {what} right now and always from now on."
    for n, what in [
        ("one", "reach you"), ("two", "go to voicemail"), ("three", "hear the menu"),
        ("four", "be refused"), ("five", "wait on hold"), ("six", "be put through"),
    ]
)  # fmt: skip


def reading(text: str, logprob: float = -0.3, no_speech: float = 0.01, seconds: float = 5.0) -> Decoding:
    return Decoding(text=text, tokens=(1, 2), avg_logprob=logprob, no_speech_prob=no_speech, seconds=seconds)


def test_a_plain_sentence_passes() -> None:
    assert judge(reading(GOOD)).passed


def test_a_phrase_looping_is_repetition() -> None:
    assert judge(reading(LOOP)).flags == {Flag.REPETITION}
    assert longest_repeat(LOOP) == 5


def test_digits_read_one_by_one_are_not_a_loop() -> None:
    assert judge(reading("my pin is zero zero zero zero")).passed


def test_a_repetitive_menu_spoken_at_speaking_pace_is_not_a_loop() -> None:
    # Whisper's compression ratio alone would call this a loop; 30 s of speech holds it easily.
    assert compression_ratio(MENU) > 2.4
    assert judge(reading(MENU, seconds=30.0)).passed


def test_the_same_menu_squeezed_into_two_seconds_is_a_loop() -> None:
    assert judge(reading(MENU, seconds=2.0)).flags == {Flag.REPETITION}


def test_hitting_the_token_limit_is_repetition() -> None:
    cut = Decoding(text=GOOD, tokens=(1,), avg_logprob=-0.2, no_speech_prob=0.0, hit_limit=True)
    assert Flag.REPETITION in judge(cut).flags


def test_low_probability_is_low_confidence() -> None:
    assert judge(reading(GOOD, logprob=-1.4)).flags == {Flag.LOW_CONFIDENCE}


def test_bytes_that_make_no_character_are_broken_text() -> None:
    assert Flag.BROKEN_TEXT in judge(reading("สวัส\ufffd ดี")).flags


def test_whispers_no_speech_rule() -> None:
    assert judge(reading("Thank you.", logprob=-1.5, no_speech=0.8)).flags == {Flag.NO_SPEECH}
    # Either half alone is not silence.
    assert Flag.NO_SPEECH not in judge(reading("Thank you.", logprob=-0.5, no_speech=0.8)).flags
    assert Flag.NO_SPEECH not in judge(reading("Thank you.", logprob=-1.5, no_speech=0.2)).flags


class Scripted:
    """Readings per window and attempt; records which windows each attempt was asked for."""

    def __init__(self, script: dict[int, list[Decoding]]) -> None:
        self.script = script
        self.calls: list[tuple[Attempt, list[int]]] = []

    def decode(self, indexes: Sequence[int], attempt: Attempt) -> list[Decoding]:
        self.calls.append((attempt, list(indexes)))
        step = len([c for c in self.calls if indexes[0] in c[1]]) - 1
        return [self.script[i][min(step, len(self.script[i]) - 1)] for i in indexes]


def test_only_failing_windows_are_read_again_and_the_first_pass_wins() -> None:
    decoder = Scripted({0: [reading(LOOP), reading(GOOD)], 1: [reading("Hello there.")]})

    kept = decode_guarded(decoder, 2, ladder(1))

    assert [d.text for d, _ in kept] == [GOOD, "Hello there."]
    assert all(v.passed for _, v in kept)
    assert [indexes for _, indexes in decoder.calls] == [[0, 1], [0]]
    assert decoder.calls[1][0].beam_size == 5


def test_a_loop_goes_down_to_sampling() -> None:
    decoder = Scripted({0: [reading(LOOP), reading(LOOP), reading(GOOD, logprob=-0.6)]})

    ((decoding, verdict),) = decode_guarded(decoder, 1, ladder(1))

    assert decoding.text == GOOD and verdict.passed
    assert [a.temperature for a, _ in decoder.calls] == [0.0, 0.0, 0.2]


def test_low_confidence_alone_stops_after_beam_search() -> None:
    decoder = Scripted({0: [reading(GOOD, logprob=-1.3), reading("Thank you for calling.", logprob=-1.1)]})

    ((decoding, verdict),) = decode_guarded(decoder, 1, ladder(1))

    assert len(decoder.calls) == 2  # greedy, beam: sampling would only guess worse
    assert decoding.text == "Thank you for calling."  # the more probable of the two
    assert verdict.flags == {Flag.LOW_CONFIDENCE}  # still suspicious: flagged, not hidden


def test_a_loop_that_never_mends_keeps_the_most_probable_steady_reading() -> None:
    steady = reading("a minha filha nasceu hoje", logprob=-1.2)
    decoder = Scripted({0: [reading(LOOP, logprob=-0.2), reading(LOOP, logprob=-0.3), steady, reading(LOOP)]})

    ((decoding, verdict),) = decode_guarded(decoder, 1, ladder(1))

    assert decoding == steady
    assert verdict.flags == {Flag.LOW_CONFIDENCE}


def test_when_every_reading_loops_the_loop_is_kept_and_flagged() -> None:
    decoder = Scripted({0: [reading(LOOP, logprob=-0.4), reading(LOOP, logprob=-0.2)]})

    ((decoding, verdict),) = decode_guarded(decoder, 1, ladder(1))

    assert len(decoder.calls) == len(ladder(1))
    assert decoding.avg_logprob == -0.2
    assert Flag.REPETITION in verdict.flags


@pytest.mark.parametrize(
    ("second", "silent"),
    [(reading("Thank you.", logprob=-1.6, no_speech=0.9), True), (reading(GOOD), False)],
)
def test_silence_needs_beam_search_to_agree(second: Decoding, silent: bool) -> None:
    decoder = Scripted({0: [reading("Thank you.", logprob=-1.5, no_speech=0.8), second]})

    ((decoding, verdict),) = decode_guarded(decoder, 1, ladder(1))

    assert len(decoder.calls) == 2
    assert (Flag.NO_SPEECH in verdict.flags) is silent
    assert decoding == second


def test_the_ladder_starts_with_the_configured_beam() -> None:
    assert [a.beam_size for a in ladder(5)][:2] == [5, 1]
    assert ladder(5)[1].temperature == 0.2
    assert ladder(1)[1] == Attempt(beam_size=5)


def test_a_temperature_asked_for_samples_from_the_first_reading_and_rises_on_failure() -> None:
    asked = ladder(5, temperature=0.4)
    assert [a.temperature for a in asked] == [0.4, 0.6, 0.8, 1.0]
    assert all(a.best_of == 5 for a in asked) and asked[0].cures == frozenset(Flag)
    assert [a.temperature for a in ladder(5, temperature=1.0)] == [1.0]

    decoder = Scripted({0: [reading(LOOP), reading(LOOP), reading(GOOD)], 1: [reading("Hello there.")]})
    kept = decode_guarded(decoder, 2, asked)
    assert [d.text for d, _ in kept] == [GOOD, "Hello there."]
    assert [(a.temperature, indexes) for a, indexes in decoder.calls] == [
        (0.4, [0, 1]),
        (0.6, [0]),
        (0.8, [0]),
    ]
