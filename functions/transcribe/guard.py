"""The quality guard: judge each decoded window, decode again only the ones that fail.

Batched decoding reads each window once; nothing in it notices a loop or a guess. The guard
applies Whisper's own tests to every window's decoding, plus three that batched decoding
needs, and re-decodes the failing windows only — batched among themselves — down a ladder of
attempts, the way faster-whisper's sequential ``generate_with_fallback`` does for one window
(and collabora/WhisperLive PR #511 for the failed items of a batch):

- **repetition**: the same 1-to-8-word sequence repeated more than ``MAX_REPEATS`` times in a row,
  or the decoder ran into its token limit without closing, or a gzip compression ratio above 2.4
  (Whisper's test) in a text denser than anyone speaks (``MAX_CHARS_PER_S``). Whisper's ratio
  alone flagged a Russian IVR menu that says "press N if you want this caller to …" five times
  over 30 s: a loop repeats faster than speech can, a menu does not;
- **low confidence**: average log-probability per token below -1 (Whisper's);
- **broken text**: U+FFFD in the text, bytes that make no character (a byte-level BPE
  decoding split inside a character: the wrong language, or a loop);
- **no speech**: no-speech probability above 0.6 *and* average log-probability below -1
  (Whisper's rule). The VAD heard speech there, so one reading is not enough: the window is
  judged silent only if beam search finds no speech either.

The ladder: greedy (the first reading), then beam search (5) for any failure, then sampling at
temperatures 0.2 … 1.0 with the best of 5 samples (faster-whisper's values) for loops and
broken text only: on audio the model finds hard (low confidence alone), sampling only guesses
worse, at five readings a try. The first attempt that passes wins. When none passes, the guard
keeps the most probable reading that does not loop (by average log-probability), else the most
probable of all, and the window keeps its flags: what stays suspicious is flagged, never hidden.
"""

from __future__ import annotations

import gzip
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

COMPRESSION_RATIO = 2.4
LOG_PROB = -1.0
NO_SPEECH_PROB = 0.6
MAX_REPEATS = 3  # "no, no, no" happens; a phrase four times in a row is a loop
MAX_REPEATS_ONE_WORD = 5  # digits are read one by one: "zero zero zero zero"
MAX_NGRAM = 8
MAX_CHARS_PER_S = 25.0  # read speech runs at 12-16 characters a second

log = logging.getLogger(__name__)


class Flag(StrEnum):
    """What the guard found wrong with a window's final decoding (``Segment.flags``)."""

    REPETITION = "repetition"
    LOW_CONFIDENCE = "low_confidence"
    BROKEN_TEXT = "broken_text"
    NO_SPEECH = "no_speech"


@dataclass(frozen=True)
class Attempt:
    temperature: float = 0.0
    beam_size: int = 1
    best_of: int = 1
    # The failures worth this attempt: a window goes on down the ladder only while the flags of
    # its last reading are among them.
    cures: frozenset[Flag] = frozenset(Flag)


_EVERYTHING = frozenset(Flag)
# Sampling mends loops and broken bytes; on audio the model finds hard it only guesses worse.
_SAMPLING_CURES = frozenset({Flag.REPETITION, Flag.BROKEN_TEXT})


def ladder(first_beam_size: int = 1, temperature: float = 0.0) -> tuple[Attempt, ...]:
    """The attempts in order: the first reading, beam search if the first was greedy, sampling.

    A ``temperature`` above 0 (OpenAI's and Whisper's ``temperature``) samples from the first
    reading on, at that temperature and then 0.2 higher at each try up to 1.0, as Whisper's
    ``transcribe`` does with ``temperature_increment_on_fallback``."""
    if temperature > 0:
        steps = [round(temperature + 0.2 * n, 2) for n in range(6) if temperature + 0.2 * n <= 1.0 + 1e-9]
        first_sample = Attempt(temperature=steps[0], best_of=5, cures=_EVERYTHING)
        return (first_sample, *(Attempt(temperature=t, best_of=5, cures=_SAMPLING_CURES) for t in steps[1:]))
    first = (Attempt(beam_size=first_beam_size),)
    beam = (Attempt(beam_size=5, cures=_EVERYTHING),) if first_beam_size < 5 else ()
    sampled = tuple(
        Attempt(temperature=t, best_of=5, cures=_SAMPLING_CURES) for t in (0.2, 0.4, 0.6, 0.8, 1.0)
    )
    return first + beam + sampled


@dataclass(frozen=True)
class Decoding:
    """One window read once."""

    text: str
    tokens: tuple[int, ...]
    avg_logprob: float
    no_speech_prob: float
    hit_limit: bool = False  # the decoder stopped at its token limit, not at end-of-text
    seconds: float = 30.0  # how much audio the window holds
    attempt: Attempt = field(default_factory=Attempt)


@dataclass(frozen=True)
class Verdict:
    flags: frozenset[Flag]

    @property
    def passed(self) -> bool:
        """Good enough to keep: nothing wrong."""
        return not self.flags


class WindowDecoder(Protocol):
    """Reads windows of one batch, named by their index in it, with one attempt's settings."""

    def decode(self, indexes: Sequence[int], attempt: Attempt) -> list[Decoding]: ...


def judge(decoding: Decoding) -> Verdict:
    flags: set[Flag] = set()
    if decoding.no_speech_prob > NO_SPEECH_PROB and decoding.avg_logprob < LOG_PROB:
        return Verdict(frozenset({Flag.NO_SPEECH}))
    if decoding.hit_limit or is_looping(decoding.text) or _too_dense(decoding):
        flags.add(Flag.REPETITION)
    if decoding.avg_logprob < LOG_PROB:
        flags.add(Flag.LOW_CONFIDENCE)
    if "\ufffd" in decoding.text:
        flags.add(Flag.BROKEN_TEXT)
    return Verdict(frozenset(flags))


def decode_guarded(
    decoder: WindowDecoder, count: int, attempts: Sequence[Attempt]
) -> list[tuple[Decoding, Verdict]]:
    """Every window of the batch decoded, the failing ones again down ``attempts``; for each,
    the decoding kept and its verdict."""
    tried: list[list[tuple[Decoding, Verdict]]] = [[] for _ in range(count)]
    pending = list(range(count))
    for attempt in attempts:
        pending = [i for i in pending if not tried[i] or tried[i][-1][1].flags & attempt.cures]
        if not pending:
            break
        for index, decoding in zip(pending, decoder.decode(pending, attempt), strict=True):
            tried[index].append((decoding, judge(decoding)))
            log.debug("window %d %s: %s %s", index, attempt, tried[index][-1][1].flags, decoding)
        pending = [i for i in pending if not tried[i][-1][1].passed]
    return [_kept(candidates) for candidates in tried]


def _kept(candidates: list[tuple[Decoding, Verdict]]) -> tuple[Decoding, Verdict]:
    """The first reading that passed; else silence if the last reading still found none; else
    the most probable reading that does not loop (or the most probable of all)."""
    passed = [c for c in candidates if c[1].passed]
    if passed:
        return passed[0]
    if Flag.NO_SPEECH in candidates[-1][1].flags:
        return candidates[-1]
    steady = [c for c in candidates if not c[1].flags & {Flag.REPETITION, Flag.NO_SPEECH}]
    return max(steady or candidates, key=lambda c: c[0].avg_logprob)


def _too_dense(decoding: Decoding) -> bool:
    text = decoding.text.strip()
    too_long = len(text) > MAX_CHARS_PER_S * max(decoding.seconds, 1.0)
    return too_long and compression_ratio(text) > COMPRESSION_RATIO


def compression_ratio(text: str) -> float:
    data = text.encode("utf-8")
    return len(data) / len(gzip.compress(data)) if data else 0.0


def repeat_runs(text: str) -> dict[int, int]:
    """For each length n (1 to ``MAX_NGRAM`` words), the most times one n-word sequence occurs
    back to back (case and punctuation ignored)."""
    words = re.sub(r"[^\w\s']", " ", text.casefold()).split()
    runs: dict[int, int] = {}
    for n in range(1, min(MAX_NGRAM, len(words) // 2) + 1):
        best = 1
        for start in range(n):
            run = 1
            for i in range(start + n, len(words) - n + 1, n):
                run = run + 1 if words[i : i + n] == words[i - n : i] else 1
                best = max(best, run)
        runs[n] = best
    return runs


def longest_repeat(text: str) -> int:
    """How many times in a row the most repeated word sequence occurs (1 for plain text)."""
    return max(repeat_runs(text).values(), default=1 if text.strip() else 0)


def is_looping(text: str) -> bool:
    return any(
        run > (MAX_REPEATS_ONE_WORD if n == 1 else MAX_REPEATS) for n, run in repeat_runs(text).items()
    )
