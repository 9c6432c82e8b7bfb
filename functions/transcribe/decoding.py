"""Reading windows with Whisper: CTranslate2's model, driven batch by batch.

- **Features.** A window's audio is padded with silence to 30 s before its log-Mel spectrogram,
  as Whisper was trained. (faster-whisper's batched mode pads the spectrogram with zeros
  instead; on the 411 s English file audio padding gave WER 0.0195 against 0.0218.)
- **Encoder once per batch.** Its output is kept per window (as numpy) so that the guard's
  second attempts decode the failed windows again without encoding them again.
- **No timestamp tokens** (WhisperX's choice): each window is read as one text. A batched
  decoder reads a window once and never seeks, so a decoding that closed early with a
  timestamp token left the rest of the window undecoded: the pipeline lost whole sentences that
  way (WER 0.080 against WhisperX's 0.024 on the same file). Segments are cut afterwards from
  the words (``segmenting``).
- **Words without an alignment model.** CTranslate2's ``align`` (the decoder's cross-attention
  over the encoder output it already has, through dynamic time warping: faster-whisper's
  ``find_alignment``) gives each word of the kept text its times and its probability.
- **Language** probabilities come from the same encoder outputs (one decoder step each).
- **A shorter encoder window for live utterances** (``window_s``, whisper.cpp's ``audio_ctx``):
  CTranslate2 encodes fewer frames when given fewer, and the cost falls with them. On 80 real
  utterances of 1-9 s (en, es, fr, ru), greedy: a 15 s window read them in 0.35 s (median)
  against 0.83-0.95 s for 30 s, with the same WER per language (en 0.061 both, es 0.166 vs
  0.171, fr 0.155 vs 0.164, ru 0.266 vs 0.277); a 10 s window lost accuracy in English (0.113).
  Files keep 30 s, as Whisper was trained; the live lane reads again at 30 s whatever the guard
  flags.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from functions.common.transcript import Word
from functions.transcribe.audio import SAMPLE_RATE, Audio
from functions.transcribe.guard import Attempt, Decoding
from functions.transcribe.reading import Encoded

WINDOW_S = 30
_MIN_CONFIDENCE = 1e-6  # a word probability can underflow to 0.0; confidences stay in (0, 1]
_PREPEND = "\"'“¿([{-"  # faster-whisper's punctuation merged into the next word
_APPEND = "\"'.。,，!！?？:：”)]}、"  # … and into the previous one
_SENTENCE_ENDS = ".。!！?？"


class Whisper:
    """The loaded Whisper model (faster-whisper's ``WhisperModel``) and what the engine asks of it."""

    def __init__(self, model: Any, task: str = "transcribe") -> None:
        self._model = model  # faster_whisper.WhisperModel; .model is CTranslate2's Whisper
        self._task = task  # the decoder prompt's task token: transcribe, or translate into English
        self._tokenizers: dict[str, Any] = {}

    def encode(self, windows: Sequence[Audio], window_s: float = WINDOW_S) -> list[Encoded]:
        features = np.stack([self._features(audio, window_s) for audio in windows])
        encoded = self._model.model.encode(_storage(features), to_cpu=True)
        return list(np.array(encoded))

    def language_probabilities(self, encoded: Sequence[Encoded]) -> list[dict[str, float]]:
        """Per window, each language's probability (Whisper's language token after start-of-text)."""
        found = self._model.model.detect_language(_storage(np.stack(encoded)))
        return [{token[2:-2]: float(p) for token, p in window} for window in found]

    def reader(
        self, encoded: Sequence[Encoded], seconds: Sequence[float], language: str, hints: str | None
    ) -> WindowReader:
        return WindowReader(self, list(encoded), list(seconds), language, hints)

    def words(
        self,
        encoded: Sequence[Encoded],
        language: str,
        tokens: Sequence[Sequence[int]],
        durations: Sequence[float],
    ) -> list[list[Word]]:
        """Each window's kept tokens as words, timed in the window (s), with their probabilities."""
        tokenizer = self.tokenizer(language)
        texts = [[t for t in window if t < tokenizer.eot] for window in tokens]
        wanted = [i for i, text in enumerate(texts) if text]
        out: list[list[Word]] = [[] for _ in texts]
        if not wanted:
            return out
        frames = [min(WINDOW_S * 100, max(1, round(durations[i] * 100))) for i in wanted]
        alignments = self._model.find_alignment(
            tokenizer, [texts[i] for i in wanted], _storage(np.stack([encoded[i] for i in wanted])), frames
        )
        for i, alignment in zip(wanted, alignments, strict=True):
            out[i] = _words_of(alignment, durations[i])
        return out

    def tokenizer(self, language: str) -> Any:
        from faster_whisper.tokenizer import Tokenizer  # type: ignore[import-untyped]

        if language not in self._tokenizers:
            self._tokenizers[language] = Tokenizer(
                self._model.hf_tokenizer,
                self._model.model.is_multilingual,
                task=self._task,
                language=language,
            )
        return self._tokenizers[language]

    def generate(
        self, encoded: Sequence[Encoded], prompt: list[int], suppress: list[int], attempt: Attempt
    ) -> list[Any]:
        sampling = attempt.temperature > 0
        if sampling:
            import ctranslate2

            ctranslate2.set_random_seed(len(encoded))  # the same audio reads the same way every run
        return list(
            self._model.model.generate(
                _storage(np.stack(encoded)),
                [prompt] * len(encoded),
                beam_size=1 if sampling else attempt.beam_size,
                num_hypotheses=attempt.best_of if sampling else 1,
                sampling_topk=0 if sampling else 1,
                sampling_temperature=attempt.temperature if sampling else 1.0,
                max_length=self.max_length,
                return_scores=True,
                return_no_speech_prob=True,
                suppress_blank=True,
                suppress_tokens=suppress,
            )
        )

    def prompt(self, language: str, hints: str | None) -> list[int]:
        prompt: list[int] = self._model.get_prompt(
            self.tokenizer(language), [], without_timestamps=True, hotwords=hints
        )
        return prompt

    def suppressed(self, language: str) -> list[int]:
        """Whisper's non-speech symbols, never generated (faster-whisper's default, ``[-1]``)."""
        from faster_whisper.transcribe import get_suppressed_tokens  # type: ignore[import-untyped]

        return list(get_suppressed_tokens(self.tokenizer(language), [-1]))

    @property
    def max_length(self) -> int:
        return int(self._model.max_length)

    def _features(self, audio: Audio, window_s: float) -> npt.NDArray[np.float32]:
        padded = np.zeros(round(window_s * SAMPLE_RATE), dtype=np.float32)
        padded[: min(audio.size, padded.size)] = audio[: padded.size]
        features: npt.NDArray[np.float32] = self._model.feature_extractor(padded)
        return features[:, : round(window_s * 100)]


class WindowReader:
    """One batch of encoded windows in one language: the guard's ``WindowDecoder``."""

    def __init__(
        self, whisper: Whisper, encoded: list[Encoded], seconds: list[float], language: str, hints: str | None
    ) -> None:
        self._whisper = whisper
        self._encoded = encoded
        self._seconds = seconds
        self._tokenizer = whisper.tokenizer(language)
        self._prompt = whisper.prompt(language, hints)
        self._suppress = whisper.suppressed(language)

    def decode(self, indexes: Sequence[int], attempt: Attempt) -> list[Decoding]:
        encoded = [self._encoded[i] for i in indexes]
        results = self._whisper.generate(encoded, self._prompt, self._suppress, attempt)
        return [
            self._best(result, self._seconds[i], attempt) for i, result in zip(indexes, results, strict=True)
        ]

    def _best(self, result: Any, seconds: float, attempt: Attempt) -> Decoding:
        """The hypothesis with the best average log-probability (several only when sampling)."""
        readings = []
        for tokens, score in zip(result.sequences_ids, result.scores, strict=True):
            # CTranslate2's score is the sum of log-probabilities over the length (length
            # penalty 1); per token, counting end-of-text, as Whisper does.
            avg_logprob = float(score) * len(tokens) / (len(tokens) + 1)
            text = self._tokenizer.decode([t for t in tokens if t < self._tokenizer.eot])
            hit_limit = len(tokens) + len(self._prompt) >= self._whisper.max_length
            readings.append(
                Decoding(
                    text,
                    tuple(tokens),
                    avg_logprob,
                    float(result.no_speech_prob),
                    hit_limit,
                    seconds,
                    attempt,
                )
            )
        return max(readings, key=lambda d: d.avg_logprob)


def _words_of(alignment: list[dict[str, Any]], duration: float) -> list[Word]:
    """faster-whisper's word timings (punctuation merged into words, over-long words at sentence
    ends trimmed to twice the median word), kept inside the window."""
    from faster_whisper.transcribe import merge_punctuations

    durations = np.array([w["end"] - w["start"] for w in alignment])
    durations = durations[durations.nonzero()]
    longest = 2 * min(0.7, float(np.median(durations))) if durations.size else 0.0
    if longest:
        for i in range(1, len(alignment)):
            if alignment[i]["end"] - alignment[i]["start"] > longest:
                if alignment[i]["word"] in _SENTENCE_ENDS:
                    alignment[i]["end"] = alignment[i]["start"] + longest
                elif alignment[i - 1]["word"] in _SENTENCE_ENDS:
                    alignment[i]["start"] = alignment[i]["end"] - longest
    merge_punctuations(alignment, _PREPEND, _APPEND)
    words = []
    for w in alignment:
        if not w["word"].strip():
            continue
        start = min(float(w["start"]), duration)
        end = min(max(float(w["end"]), start), duration)
        confidence = min(1.0, max(_MIN_CONFIDENCE, float(w["probability"])))
        words.append(Word(text=w["word"], start=start, end=end, confidence=confidence))
    return words


def _storage(array: npt.NDArray[np.float32]) -> Any:
    import ctranslate2

    return ctranslate2.StorageView.from_array(np.ascontiguousarray(array, dtype=np.float32))
