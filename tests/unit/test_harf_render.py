"""Harf's rendering: ``H:MM:SS`` times and Persian display text (no model, no services)."""

from __future__ import annotations

import pytest

from functions.common.persian import persian_display
from functions.common.render_harf import display_text, hms, render_task
from functions.common.transcript import Segment, Transcript


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0.0, "0:00:00"),
        (0.49, "0:00:00"),
        (0.5, "0:00:01"),
        (2.4, "0:00:02"),
        (44.0, "0:00:44"),
        (59.6, "0:01:00"),
        (3599.5, "1:00:00"),
        (3 * 3600 + 25 * 60 + 7, "3:25:07"),
        (25 * 3600, "25:00:00"),
        (-1.0, "0:00:00"),
        (float("nan"), "0:00:00"),
    ],
)
def test_times_are_h_mm_ss_like_the_samples(seconds: float, shown: str) -> None:
    assert hms(seconds) == shown


def test_rounding_keeps_order_and_never_puts_an_end_before_its_start() -> None:
    times = [i * 0.13 for i in range(200)]
    shown = [hms(t) for t in times]
    as_seconds = [int(h) * 3600 + int(m) * 60 + int(s) for h, m, s in (x.split(":") for x in shown)]
    assert as_seconds == sorted(as_seconds)


def test_arabic_yeh_and_kaf_become_persian_and_digits_stay() -> None:
    arabic = "يكي را از حكما شنيدم ى ۱۲۳ ١٢٣ 123"
    assert persian_display(arabic) == "یکی را از حکما شنیدم ی ۱۲۳ ١٢٣ 123"
    already = "یکی را از حکما شنیدم"
    assert persian_display(already) == already


def test_vowel_marks_are_removed_so_a_line_reads_as_the_document_prints_it() -> None:
    # the document's second line, as Whisper sometimes writes it: fatha, kasra, damma, sukun,
    # shadda and tanwin on top of the Arabic yeh and kaf
    marked = "يِكي را اَز حُكَما شِنيدَم كِه مي گُفْت"
    assert persian_display(marked) == "یکی را از حکما شنیدم که می گفت"
    assert persian_display("لطفاً مُدّت") == "لطفا مدت"
    decomposed = "\u0627\u0653 \u0647\u0654"  # آ and ۀ as letter + madda / hamza above
    assert persian_display(decomposed) == decomposed  # those marks make letters: they stay


def test_only_persian_text_is_normalised() -> None:
    assert display_text("  كتاب   يك ", "fa") == "کتاب یک"
    assert display_text("كتاب", "ar") == "كتاب"  # Arabic stays Arabic


def test_a_task_renders_as_the_document_shows() -> None:
    transcript = Transcript(
        job_id="j",
        language="fa",
        duration=44.2,
        channels=1,
        segments=(
            Segment(start=0.0, end=2.2, text=" حكايت", confidence=0.9),
            Segment(start=2.2, end=2.9, text="  ", confidence=0.1),
            Segment(start=2.3, end=6.1, text="يكي را از حكما شنيدم كه مي گفت", confidence=0.9),
        ),
    )
    assert render_task("https://i.ganjoor.net/a2/41417.mp3", 44.2, transcript) == {
        "media_url": "https://i.ganjoor.net/a2/41417.mp3",
        "duration": "0:00:44",
        "segments": [
            {"start": "0:00:00", "end": "0:00:02", "text": "حکایت"},
            {"start": "0:00:02", "end": "0:00:06", "text": "یکی را از حکما شنیدم که می گفت"},
        ],
    }
    assert render_task("u", 3.0, None)["segments"] == []
