"""Scoring transcripts against references the way Whisper's papers do.

Text is normalised with Whisper's own normalisers (shipped in transformers): the English one
for English (spelling variants, numbers, contractions), the basic one with diacritics removed
for every other language. WER is jiwer's over the normalised words.

One rule is added, as NIST's scoring files (GLM) add it: a word spelled out letter by letter
("M I S D N", "Д А Х Д И": three or more single letters in a row) is one word, the way a
recogniser writes it ("MISDN"). Without it a transcript that gets such a word right scores five
errors and the sentence counts as lost.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import jiwer

# Persian is written with Arabic letters that have Persian forms; Whisper writes either. Scored as
# Persian evaluations do: one form per letter, the zero-width non-joiner of "می‌روم" dropped.
_PERSIAN = str.maketrans({"ي": "ی", "ى": "ی", "ك": "ک", "ة": "ه", "\u200c": None})
_SPELLED_OUT = 3  # "a I" and "и в" are words; three single letters in a row are a spelling


@functools.cache
def normaliser(language: str) -> Callable[[str], str]:
    from transformers.models.whisper.english_normalizer import BasicTextNormalizer, EnglishTextNormalizer

    normalise = EnglishTextNormalizer({}) if language == "en" else BasicTextNormalizer(remove_diacritics=True)
    if language == "fa":
        return lambda text: _spelled_out_joined(normalise(text.translate(_PERSIAN)))
    return lambda text: _spelled_out_joined(normalise(text))


def _spelled_out_joined(text: str) -> str:
    """The normalised words, runs of three or more single letters joined into one word."""
    out: list[str] = []
    run: list[str] = []
    for word in [*text.split(), ""]:
        if len(word) == 1 and word.isalpha():
            run.append(word)
            continue
        out += ["".join(run)] if len(run) >= _SPELLED_OUT else run
        run = []
        if word:
            out.append(word)
    return " ".join(out)


def words_of(text: str, language: str) -> list[str]:
    return normaliser(language)(text).split()


def wer(reference: str, hypothesis: str, language: str) -> float:
    ref, hyp = normaliser(language)(reference), normaliser(language)(hypothesis)
    if not ref:
        return float(bool(hyp))
    return float(jiwer.wer(ref, hyp))


def errors(reference: str, hypothesis: str, language: str) -> int:
    """Substitutions + deletions + insertions (for WER pooled over many files)."""
    ref, hyp = normaliser(language)(reference), normaliser(language)(hypothesis)
    if not ref:
        return len(hyp.split())
    out = jiwer.process_words(ref, hyp)
    return int(out.substitutions + out.deletions + out.insertions)


def lost_sentences(sentences: Sequence[str], hypothesis: str, language: str) -> list[str]:
    """The reference sentences of which less than half the words are found, in order, in the
    hypothesis (the alignment of the whole reference against the whole hypothesis)."""
    refs = [normaliser(language)(s) for s in sentences]
    reference = " ".join(r for r in refs if r)
    hyp = normaliser(language)(hypothesis)
    if not reference:
        return []
    hit = [False] * len(reference.split())
    if hyp:
        for chunk in jiwer.process_words(reference, hyp).alignments[0]:
            if chunk.type == "equal":
                for i in range(chunk.ref_start_idx, chunk.ref_end_idx):
                    hit[i] = True
    lost, at = [], 0
    for sentence, ref in zip(sentences, refs, strict=True):
        count = len(ref.split())
        if count and sum(hit[at : at + count]) < count / 2:
            lost.append(sentence)
        at += count
    return lost


def longest_run(text: str, language: str, max_n: int = 8) -> int:
    """The most times one sequence of 1 to ``max_n`` words occurs back to back (1 = no repeat)."""
    words = words_of(text, language)
    best = 1 if words else 0
    for n in range(1, min(max_n, len(words) // 2) + 1):
        for i in range(len(words) - n):
            run = 1
            while words[i + run * n : i + (run + 1) * n] == words[i : i + n]:
                run += 1
            best = max(best, run)
    return best
