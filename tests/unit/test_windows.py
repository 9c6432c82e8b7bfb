"""Speech packed into Whisper's windows, words cut into segments, the language vote."""

from __future__ import annotations

import pytest

from functions.common.transcript import Word
from functions.transcribe.language import ranked
from functions.transcribe.segmenting import MAX_SEGMENT_S, sentences
from functions.transcribe.vad import MAX_PAUSE_S, Region, pack_windows


def test_short_pauses_are_kept_and_long_ones_shortened() -> None:
    (window,) = pack_windows([Region(1.0, 4.0), Region(4.3, 6.0), Region(10.0, 12.0)])

    assert window.start == 1.0 and window.end == 12.0
    assert window.duration == pytest.approx(3.0 + 0.3 + 1.7 + MAX_PAUSE_S + 2.0)
    assert window.file_time(3.15) == pytest.approx(4.15)  # window times start at its first region
    assert window.file_time(5.0 + MAX_PAUSE_S) == pytest.approx(10.0)  # past the shortened pause
    assert window.file_time(window.duration) == pytest.approx(12.0)


def test_windows_never_outgrow_the_limit_and_keep_regions_in_order() -> None:
    regions = [Region(float(s), s + 7.0) for s in range(0, 80, 8)]  # ten 7 s regions, 1 s apart

    windows = pack_windows(regions)

    assert all(w.duration <= 30.0 for w in windows)
    assert [r for w in windows for r in w.regions] == regions
    assert len(windows) == 3  # 3 + 3 + 4 would not fit: 7 + 0.6 + 7 + 0.6 + 7 + 0.6 + 7 > 30


def test_a_smaller_limit_makes_smaller_windows() -> None:
    windows = pack_windows([Region(0.0, 4.0), Region(5.0, 9.0), Region(10.0, 14.0)], max_window_s=5.0)

    assert [len(w.regions) for w in windows] == [1, 1, 1]


def test_a_region_longer_than_a_window_is_cut() -> None:
    windows = pack_windows([Region(0.0, 70.0)])

    assert [(w.start, w.end) for w in windows] == [(0.0, 30.0), (30.0, 60.0), (60.0, 70.0)]


def words(*spec: tuple[str, float, float]) -> list[Word]:
    return [Word(text=f" {t}", start=s, end=e, confidence=0.9) for t, s, e in spec]


def test_segments_end_at_sentence_ends_and_pauses() -> None:
    found = sentences(
        words(("Hello.", 0.0, 0.5), ("How", 0.6, 0.8), ("are", 0.8, 1.0), ("you", 1.0, 1.2),
              ("today", 2.5, 3.0), ("friend?", 3.0, 3.4), ("«Bien.»", 3.5, 4.0))
    )  # fmt: skip

    assert [[w.text.strip() for w in s] for s in found] == [
        ["Hello."], ["How", "are", "you"], ["today", "friend?"], ["«Bien.»"],
    ]  # fmt: skip


def test_a_segment_without_punctuation_stops_growing_at_the_limit() -> None:
    many = words(*[(f"w{i}", i * 0.5, i * 0.5 + 0.4) for i in range(100)])

    found = sentences(many)

    assert all(s[-1].end - s[0].start <= MAX_SEGMENT_S for s in found)
    assert sum(len(s) for s in found) == 100


def test_the_language_vote_weighs_windows_by_their_speech() -> None:
    windows = [{"es": 0.6, "pt": 0.4}, {"pt": 0.9, "es": 0.1}, {"es": 0.55, "pt": 0.45}]

    assert ranked(windows, [2.0, 25.0, 3.0])[:2] == ["pt", "es"]
    assert ranked(windows, [20.0, 1.0, 20.0])[0] == "es"
