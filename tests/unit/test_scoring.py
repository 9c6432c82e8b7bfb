"""The bench's and the quality tests' scoring: Whisper's normalisers plus spelled-out words."""

from tests.scoring import lost_sentences, wer


def test_a_word_spelled_letter_by_letter_matches_it_written_as_one() -> None:
    assert wer("M I S D N", "MISDN.", "en") == 0.0
    assert wer("Д А Х Д И", "ДАХДИ", "ru") == 0.0
    assert lost_sentences(["Press one.", "M I S D N"], "Press one. mISDN", "en") == []


def test_single_letter_words_stay_words() -> None:
    # Russian "и в" (and in) are two words; so are "a" and "I" in English.
    assert wer("дом и в саду", "дом ив саду", "ru") > 0
    assert wer("I saw a cat", "I saw cat", "en") == 0.25


def test_a_spelling_the_transcript_gets_wrong_still_counts() -> None:
    assert wer("M I S D N", "ISDN", "en") == 1.0
