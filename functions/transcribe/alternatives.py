"""Alternatives for a segment (TRD's ``decoder.max_sentences``, Watson's ``max_alternatives``).

After a segment is made, its audio (padded by ``_NBEST_PAD_S`` where that pads with silence, not
with the neighbours' speech) is decoded again on its own, without timestamps, by CTranslate2's
beam search asking for several hypotheses. The segment's own text stays first; hypotheses that
read the same (ignoring case and punctuation) are dropped; the rest follow, best first, up to
``alternatives - 1``. Their confidence is the segment's, scaled by how much less probable per
token each is than the best hypothesis (``exp(score - best score)``, CTranslate2's scores being
length-normalised log-probabilities), so it never exceeds the first's and falls in the
hypotheses' order. They have no word timings. Cost: one more 30 s encoder pass and a beam search
per segment (shorter inputs make Whisper loop), only when asked for.
"""

from __future__ import annotations

import math
import re
from typing import Any

from functions.common.asr import TranscribeOptions
from functions.common.transcript import Alternative, Segment
from functions.transcribe.audio import SAMPLE_RATE, Audio
from functions.transcribe.vad import Region

_MIN_CONFIDENCE = 1e-6
_NBEST_PAD_S = 0.3  # audio kept around a segment's words when it is decoded again
_NBEST_BEAM = 5  # faster-whisper's beam size; more hypotheses than alternatives, some read the same


class NBest:
    """Alternatives for a segment: its audio decoded again by beam search, keeping several
    hypotheses."""

    def __init__(self, whisper: Any, language: str, options: TranscribeOptions, speech: list[Region]) -> None:
        from faster_whisper.tokenizer import Tokenizer  # type: ignore[import-untyped]
        from faster_whisper.transcribe import get_suppressed_tokens  # type: ignore[import-untyped]

        self._whisper = whisper  # faster_whisper.WhisperModel; .model is CTranslate2's Whisper
        tokenizer = Tokenizer(
            whisper.hf_tokenizer, whisper.model.is_multilingual, task="transcribe", language=language
        )
        self._tokenizer = tokenizer
        hotwords = " ".join(options.hints) or None  # the same bias as the first reading
        self._prompt = whisper.get_prompt(tokenizer, [], without_timestamps=True, hotwords=hotwords)
        self._suppress = get_suppressed_tokens(tokenizer, [-1])
        self._wanted = options.alternatives - 1
        self._beam = max(_NBEST_BEAM, 2 * options.alternatives)
        self._speech = _merged([(r.start, r.end) for r in speech])

    def add_alternatives(self, segment: Segment, audio: Audio) -> Segment:
        if not segment.text.strip():
            return segment
        hypotheses = self._decode(audio, *self._span(segment))
        best = max((score for _, score in hypotheses), default=0.0)
        seen = {_reading(segment.text)}
        alternatives: list[Alternative] = []
        for text, score in sorted(hypotheses, key=lambda h: -h[1]):
            reading = _reading(text)
            if not reading or reading in seen:
                continue
            seen.add(reading)
            confidence = max(_MIN_CONFIDENCE, segment.confidence * math.exp(score - best))
            alternatives.append(Alternative(text=text, confidence=confidence))
            if len(alternatives) == self._wanted:
                break
        return segment.model_copy(update={"alternatives": tuple(alternatives)})

    def _span(self, segment: Segment) -> tuple[float, float]:
        """The segment's words with ``_NBEST_PAD_S`` around them, except where speech runs on
        through the padding: that speech is a neighbouring segment's, and would be read too."""
        start, end = segment.start - _NBEST_PAD_S, segment.end + _NBEST_PAD_S
        if any(s <= start and e >= segment.start for s, e in self._speech):
            start = segment.start
        if any(s <= segment.end and e >= end for s, e in self._speech):
            end = segment.end
        return start, end

    def _decode(self, audio: Audio, start: float, end: float) -> list[tuple[str, float]]:
        from faster_whisper.audio import pad_or_trim  # type: ignore[import-untyped]

        span = audio[max(0, round(start * SAMPLE_RATE)) : max(0, round(end * SAMPLE_RATE))]
        # A full 30 s window, as Whisper was trained: on shorter encoder inputs it repeats itself.
        features = pad_or_trim(self._whisper.feature_extractor(span))
        encoded = self._whisper.encode(features)
        (result,) = self._whisper.model.generate(
            encoded,
            [self._prompt],
            beam_size=self._beam,
            num_hypotheses=self._beam,
            return_scores=True,
            max_length=self._whisper.max_length,
            suppress_blank=True,
            suppress_tokens=self._suppress,
        )
        return [
            (self._tokenizer.decode(ids).strip(), float(score))
            for ids, score in zip(result.sequences_ids, result.scores, strict=True)
        ]


def _merged(speech: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Speech regions with the cuts of ``merge_chunks`` (regions meeting end to start) joined."""
    regions: list[tuple[float, float]] = []
    for start, end in sorted(speech):
        if regions and start - regions[-1][1] < 0.05:
            regions[-1] = (regions[-1][0], max(end, regions[-1][1]))
        else:
            regions.append((start, end))
    return regions


def _reading(text: str) -> str:
    """What a text says, for telling alternatives apart: case and punctuation ignored."""
    return " ".join(re.sub(r"[^\w\s']", " ", text.casefold()).split())
