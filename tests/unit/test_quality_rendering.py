"""Quality flags reach every dialect additively, and no-speech decisions only where there is room."""

from __future__ import annotations

from functions.common.jobs import RecognitionOptions
from functions.common.render_harf import render_task
from functions.common.render_trd import render_segment
from functions.common.render_watson import render_results
from functions.common.transcript import Segment, Transcript, Word

WORDS = (
    Word(text="Please", start=0.0, end=0.8, confidence=0.5),
    Word(text="hold.", start=0.9, end=2.0, confidence=0.3),
)
SPOKEN = Segment(
    start=0.0, end=2.0, text="Please hold.", confidence=0.4, flags=("low_confidence",), words=WORDS
)
PLAIN = Segment(start=2.5, end=3.5, text="Thank you.", confidence=0.9)
SILENT = Segment(start=4.0, end=5.0, text="", confidence=0.0, flags=("no_speech",))
TRANSCRIPT = Transcript(job_id="j", language="en", duration=5.0, channels=1, segments=(SPOKEN, PLAIN, SILENT))


def test_trd_shows_a_no_speech_decision_as_no_match_with_its_flag() -> None:
    silent = render_segment(SILENT, "lm", word_details=True)
    assert silent["status"] == "NO_MATCH" and silent["quality_flags"] == ["no_speech"]
    assert render_segment(SPOKEN, "lm", word_details=True)["quality_flags"] == ["low_confidence"]
    assert "quality_flags" not in render_segment(PLAIN, "lm", word_details=True)


def test_watson_has_no_result_for_a_no_speech_decision() -> None:
    [entry] = render_results(TRANSCRIPT, RecognitionOptions(timestamps=True))
    results = entry["results"]
    assert [r["alternatives"][0]["transcript"] for r in results] == ["Please hold. ", "Thank you. "]
    assert results[0]["quality_flags"] == ["low_confidence"] and "quality_flags" not in results[1]


def test_harf_lists_spoken_segments_with_their_flags() -> None:
    segments = render_task("https://example.org/a.wav", 5.0, TRANSCRIPT)["segments"]
    assert [s["text"] for s in segments] == ["Please hold.", "Thank you."]
    assert segments[0]["quality_flags"] == ["low_confidence"] and "quality_flags" not in segments[1]
