"""The coverage rule: every stretch of speech the VAD found ends up under decoded words, or the
transcript says why not.

After a batch of windows is read, a speech region of at least ``MIN_REGION_S`` that no word
overlaps is *uncovered*: the decoder skipped it (closed early, or jumped over a sentence). Each
uncovered region is read again on its own, through the same guard. What that reading gives is
kept only when it is plainly speech (no-speech probability under ``MAX_NO_SPEECH_PROB``,
average log-probability over ``MIN_LOG_PROB``, the guard passed): a lone noise read on its own
tempts Whisper into a stock phrase ("Thank you."). Otherwise the region becomes an empty
segment flagged ``no_speech``: the decision is in the transcript (TRD shows it as ``NO_MATCH``).
"""

from __future__ import annotations

from collections.abc import Sequence

from functions.common.transcript import Word
from functions.transcribe.guard import Decoding, Verdict
from functions.transcribe.vad import Region

MIN_REGION_S = 1.0  # VAD regions carry 0.4 s of padding on each side: this is ≥ 0.2 s of speech
MAX_NO_SPEECH_PROB = 0.3
MIN_LOG_PROB = -0.8


def uncovered(regions: Sequence[Region], words: Sequence[Word]) -> list[Region]:
    """The regions of at least ``MIN_REGION_S`` that no word overlaps."""
    spans = sorted((w.start, w.end) for w in words)
    return [
        r
        for r in regions
        if r.duration >= MIN_REGION_S and not any(start < r.end and end > r.start for start, end in spans)
    ]


def plainly_speech(decoding: Decoding, verdict: Verdict) -> bool:
    """Whether a region read on its own is to be believed."""
    return (
        not verdict.flags
        and bool(decoding.text.strip())
        and decoding.no_speech_prob < MAX_NO_SPEECH_PROB
        and decoding.avg_logprob > MIN_LOG_PROB
    )
