"""Which language a channel speaks when the job does not say: a vote over several windows.

Whisper's language probabilities are read on every window of the first batch (up to
``asr_batch_size`` windows of 30 s: the encoder has already run on them), weighted by each
window's seconds of speech and summed. One window can mislead — a name, a greeting, an accent —
several rarely do. The languages come ranked so that one whose text comes out broken (U+FFFD,
see ``guard``) gives way to the next.
"""

from __future__ import annotations

from collections.abc import Sequence

RUNNERS_UP = 2  # languages tried after the winner, for windows whose text comes out broken


def ranked(probabilities: Sequence[dict[str, float]], weights: Sequence[float]) -> list[str]:
    """Languages by summed, speech-weighted probability, best first (the winner and its runners-up)."""
    totals: dict[str, float] = {}
    for window, weight in zip(probabilities, weights, strict=True):
        for language, probability in window.items():
            totals[language] = totals.get(language, 0.0) + probability * max(weight, 1e-3)
    best = sorted(totals, key=lambda language: -totals[language])
    return best[: 1 + RUNNERS_UP]
