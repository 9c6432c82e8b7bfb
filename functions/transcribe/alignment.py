"""Optional wav2vec2 re-timing of words (``whisperx.align``) from a local model directory
(``asr_align_model``). Words keep Whisper's text and probability, and keep their own times where
alignment gives none."""

from __future__ import annotations

import logging

from functions.common.transcript import Word
from functions.transcribe.audio import Audio
from functions.transcribe.segmenting import join_text

log = logging.getLogger(__name__)


class Aligner:
    def __init__(self, model_dir: str, device: str) -> None:
        import whisperx

        # whisperx.align splits sentences with NLTK's punkt_tab data and would try to download
        # it when missing; refuse at start-up rather than fail offline at the first job.
        if not _punkt_installed("en"):
            raise RuntimeError("SHENAVA_ASR_ALIGN_MODEL needs NLTK's punkt_tab data (nltk_data) installed")
        # The language in the metadata only steers text splitting; it is set per run.
        self._model, self._metadata = whisperx.load_align_model(
            "en", device, model_name=model_dir, model_cache_only=True
        )
        self._device = device
        self._unsupported: set[str] = set()

    def retime(self, words: list[Word], audio: Audio, language: str) -> list[Word]:
        import whisperx

        if not _punkt_installed(language):
            if language not in self._unsupported:
                log.warning("no NLTK punkt_tab data for %r: words keep Whisper's timings", language)
                self._unsupported.add(language)
            return words
        segment = {"text": join_text(words), "start": words[0].start, "end": words[-1].end}
        metadata = {**self._metadata, "language": language}
        result = whisperx.align([segment], self._model, metadata, audio, self._device)
        aligned = [w for s in result["segments"] for w in s.get("words", [])]
        if len(aligned) != len(words):
            return words  # the two tokenisations disagree: keep faster-whisper's timings
        retimed = [
            w.model_copy(update={"start": float(a["start"]), "end": float(a["end"])})
            if "start" in a and "end" in a
            else w
            for w, a in zip(words, aligned, strict=True)
        ]
        return _monotonic(retimed)


def _punkt_installed(language: str) -> bool:
    """Whether NLTK has the punkt_tab sentence model whisperx.align uses for this language."""
    import nltk  # type: ignore[import-untyped]
    from whisperx.utils import PUNKT_LANGUAGES  # type: ignore[import-untyped]

    try:
        nltk.data.find(f"tokenizers/punkt_tab/{PUNKT_LANGUAGES.get(language, 'english')}/")
    except LookupError:
        return False
    return True


def _monotonic(words: list[Word]) -> list[Word]:
    """Make times non-decreasing after mixing aligned and unaligned words."""
    out: list[Word] = []
    last = 0.0
    for w in words:
        start = max(w.start, last)
        end = max(w.end, start)
        out.append(w.model_copy(update={"start": start, "end": end}))
        last = end
    return out
