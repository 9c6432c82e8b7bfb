"""Reading a channel's windows, batch by batch: the guard, the language fallback and the coverage rule.

For each batch of windows: decode through the quality guard (``guard``); windows whose text
stays broken in a detected language are read again in the runners-up (``language``); the kept
texts become words in file time; then speech that no word covers is read again region by region
(``coverage``). The model behind it is a ``WindowModel``: Whisper on CTranslate2 in production
(``decoding.Whisper``), a scripted one in the unit tests.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from functions.common.transcript import Word
from functions.transcribe import coverage
from functions.transcribe.audio import Audio
from functions.transcribe.guard import Attempt, Decoding, Flag, WindowDecoder, decode_guarded
from functions.transcribe.vad import Piece, Region, Window

log = logging.getLogger(__name__)

Encoded = npt.NDArray[np.float32]  # the encoder's output for one window; only the model reads it


class WindowModel(Protocol):
    def encode(self, windows: Sequence[Audio], window_s: float = ...) -> list[Encoded]: ...

    def language_probabilities(self, encoded: Sequence[Encoded]) -> list[dict[str, float]]: ...

    def reader(
        self, encoded: Sequence[Encoded], seconds: Sequence[float], language: str, hints: str | None
    ) -> WindowDecoder: ...

    def words(
        self,
        encoded: Sequence[Encoded],
        language: str,
        tokens: Sequence[Sequence[int]],
        durations: Sequence[float],
    ) -> list[list[Word]]:
        """Each window's kept tokens as words timed in the window, with their probabilities."""
        ...


@dataclass
class Read:
    """What one window (or one recovered region) gave: words in file time, or silence."""

    words: list[Word]
    flags: frozenset[Flag]
    silent: tuple[Region, ...] = ()


class ChannelReader:
    """One channel's windows read batch by batch (lazily, so the caller can stop between batches).

    ``language`` is the one most of the speech read so far was read in: the vote's winner, unless
    its text came out broken and a runner-up took over."""

    def __init__(
        self,
        model: WindowModel,
        audio: Audio,
        languages: list[str],
        hints: str | None,
        attempts: Sequence[Attempt],
        window_s: float = 30.0,
    ) -> None:
        self._model = model
        self._window_s = window_s
        self._audio = audio
        self._languages = languages
        self.seconds_by_language: dict[str, float] = {}  # speech read in each language so far
        self._hints = hints
        self._attempts = attempts

    @property
    def language(self) -> str:
        if not self.seconds_by_language:
            return self._languages[0]
        return max(self.seconds_by_language, key=lambda lang: self.seconds_by_language[lang])

    def batches(self, windows: list[Window], batch_size: int, first: list[Encoded]) -> Iterator[list[Read]]:
        """Per batch of windows, what was read; ``first`` is the first batch already encoded."""
        for start in range(0, len(windows), batch_size):
            batch = windows[start : start + batch_size]
            encoded = first if start == 0 else self._encode(batch)
            reads = self._read(batch, encoded)
            heard = [w for w, r in zip(batch, reads, strict=True) if not r.silent]
            yield reads + self._recover(heard, [w for r in reads for w in r.words])

    def _encode(self, windows: Sequence[Window]) -> list[Encoded]:
        return self._model.encode([w.audio(self._audio) for w in windows], self._window_s)

    def _read(self, windows: list[Window], encoded: list[Encoded]) -> list[Read]:
        """The batch through the guard; windows whose text stays broken in a detected language
        are read again in the runners-up."""
        seconds = [w.duration for w in windows]
        kept = decode_guarded(
            self._model.reader(encoded, seconds, self._languages[0], self._hints),
            len(windows),
            self._attempts,
        )
        spoken = [self._languages[0]] * len(windows)
        for other in self._languages[1:]:
            broken = [i for i, (_, verdict) in enumerate(kept) if Flag.BROKEN_TEXT in verdict.flags]
            if not broken:
                break
            reader = self._model.reader(
                [encoded[i] for i in broken], [seconds[i] for i in broken], other, self._hints
            )
            for i, again in zip(broken, decode_guarded(reader, len(broken), self._attempts), strict=True):
                if Flag.BROKEN_TEXT not in again[1].flags:
                    kept[i], spoken[i] = again, other
        for window, lang in zip(windows, spoken, strict=True):
            self.seconds_by_language[lang] = self.seconds_by_language.get(lang, 0.0) + window.speech_s
        words = self._words(encoded, windows, [k[0] for k in kept], spoken)
        return [
            Read([], verdict.flags, window.regions)
            if Flag.NO_SPEECH in verdict.flags
            else Read(ws, verdict.flags)
            for window, (_, verdict), ws in zip(windows, kept, words, strict=True)
        ]

    def _recover(self, windows: list[Window], words: list[Word]) -> list[Read]:
        """Speech no word covers, read again region by region (``coverage``)."""
        missing = coverage.uncovered([r for w in windows for r in w.regions], words)
        if not missing:
            return []
        log.info("re-reading %d uncovered speech regions", len(missing))
        alone = [Window((Piece(r.start, r.end, 0.0),), (r,)) for r in missing]
        encoded = self._encode(alone)
        reader = self._model.reader(encoded, [w.duration for w in alone], self._languages[0], self._hints)
        kept = decode_guarded(reader, len(alone), self._attempts)
        words_of = self._words(encoded, alone, [k[0] for k in kept], [self._languages[0]] * len(alone))
        return [
            Read(ws, verdict.flags)
            if coverage.plainly_speech(decoding, verdict) and ws
            else Read([], frozenset(), w.regions)
            for w, (decoding, verdict), ws in zip(alone, kept, words_of, strict=True)
        ]

    def _words(
        self,
        encoded: Sequence[Encoded],
        windows: Sequence[Window],
        kept: Sequence[Decoding],
        spoken: Sequence[str],
    ) -> list[list[Word]]:
        """Each window's kept text as words in file time (aligned per language)."""
        out: list[list[Word]] = [[] for _ in windows]
        for lang in dict.fromkeys(spoken):
            wanted = [i for i, s in enumerate(spoken) if s == lang]
            timed = self._model.words(
                [encoded[i] for i in wanted],
                lang,
                [kept[i].tokens for i in wanted],
                [windows[i].duration for i in wanted],
            )
            for i, words in zip(wanted, timed, strict=True):
                out[i] = _in_file_time(words, windows[i])
        return out


def _in_file_time(words: list[Word], window: Window) -> list[Word]:
    """Words timed in a window, moved to the file's timeline; bytes that made no character
    (U+FFFD, flagged by the guard) are left out of the text."""
    out = []
    for word in words:
        text = word.text.replace("\ufffd", "")
        if text.strip():
            start, end = window.file_time(word.start), window.file_time(word.end)
            out.append(word.model_copy(update={"text": text, "start": start, "end": max(start, end)}))
    return out
