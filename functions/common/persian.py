"""Persian text: the Arabic code points Whisper often emits become Persian ones; one spelling to compare.

Whisper's tokenizer learned Persian partly from Arabic-script text, so it sometimes writes the
Arabic yeh (ي U+064A), alef maksura (ى U+0649) or kaf (ك U+0643) where Persian uses yeh (ی U+06CC)
and keheh (ک U+06A9). They look alike but search, sort and compare differently, so Persian output
is mapped to the Persian letters. Digits are left as they are: Persian, Arabic-Indic and Latin
digits are all what was spoken, and converting them is the reader's choice, not ours.

Whisper also writes Arabic vowel marks now and then (fatha, kasra, damma, sukun, shadda, tanwin,
the dagger alef). Persian writing leaves them out, so a word with them neither matches nor sorts
with the same word without: they are removed like the Arabic letters are replaced. Hamza and
madda marks stay: they are part of letters (ۀ, آ written as two code points), not vowels.
"""

from __future__ import annotations

import re
import unicodedata

ARABIC_TO_PERSIAN = str.maketrans(
    {
        "\u064a": "\u06cc",  # ARABIC LETTER YEH → ARABIC LETTER FARSI YEH
        "\u0649": "\u06cc",  # ARABIC LETTER ALEF MAKSURA → ARABIC LETTER FARSI YEH
        "\u0643": "\u06a9",  # ARABIC LETTER KAF → ARABIC LETTER KEHEH
    }
)


# U+064B..U+0652: fathatan, dammatan, kasratan, fatha, damma, kasra, shadda, sukun; U+0670: dagger alef
VOWEL_MARKS = str.maketrans(dict.fromkeys([*map(chr, range(0x064B, 0x0653)), "\u0670"]))


def persian_display(text: str) -> str:
    """Arabic yeh / alef maksura / kaf → Persian yeh / keheh, vowel marks removed; nothing else."""
    return text.translate(ARABIC_TO_PERSIAN).translate(VOWEL_MARKS)


_DIGITS = {ord(c): str(i) for i, c in enumerate("۰۱۲۳۴۵۶۷۸۹")} | {
    ord(c): str(i) for i, c in enumerate("٠١٢٣٤٥٦٧٨٩")
}
_REMOVE: dict[int, str | None] = {cp: None for cp in range(0x064B, 0x0660)}  # harakat, tanwin, shadda, …
_REMOVE |= {0x0670: None, 0x0640: None}  # superscript alef, tatweel
_REMOVE |= {0x200D: None, 0x200E: None, 0x200F: None, 0xFEFF: None}  # ZWJ, LRM, RLM, BOM
_COMPARE = {**_DIGITS, **_REMOVE, 0x200C: " "}
_SPACES = re.compile(r"\s+")


def normalise(text: str) -> str:
    """The one spelling under which Persian (and Latin) text is compared; see the module doc."""
    text = unicodedata.normalize("NFKC", text)
    text = text.translate(ARABIC_TO_PERSIAN).translate(_COMPARE).lower()
    return _SPACES.sub(" ", text).strip()
