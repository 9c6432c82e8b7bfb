"""A window's words (in file time) cut into the transcript's segments.

Decoding without timestamp tokens gives one text per window (up to 30 s), so segments are cut
from the words: after a word that ends a sentence, where the words pause for ``PAUSE_S`` or more,
and before a segment would outgrow ``MAX_SEGMENT_S``. Then, as before, at changes of speaker
(``speaker_labels``) and at TRD's ``chunk_max_silence`` pauses found by the VAD.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Sequence

from functions.common.transcript import Segment, Word
from functions.transcribe.speakers import SpeakerTurns
from functions.transcribe.vad import Region

PAUSE_S = 1.0
MAX_SEGMENT_S = 20.0
_SENTENCE_END = re.compile(r"[.!?。！？؟…]['\"”’»)]*$")

Pauses = list[tuple[float, float]]


def segments_of(
    words: list[Word],
    channel: int,
    flags: tuple[str, ...],
    speakers: SpeakerTurns | None,
    pauses: Pauses,
    keep_words: bool,
) -> Iterator[Segment]:
    for sentence in sentences(words):
        for speaker, run in _runs(sentence, speakers, pauses):
            yield Segment(
                channel=channel,
                speaker=speaker,
                start=run[0].start,
                end=run[-1].end,
                text=join_text(run),
                confidence=sum(w.confidence for w in run) / len(run),
                words=tuple(_tidy(w) for w in run) if keep_words else (),
                flags=flags,
            )


def silent_segment(region: Region, channel: int) -> Segment:
    """Speech the VAD heard that Whisper judged not to be speech: an empty segment that says so."""
    return Segment(
        channel=channel, start=region.start, end=region.end, text="", confidence=0.0, flags=("no_speech",)
    )


def sentences(words: Sequence[Word]) -> list[list[Word]]:
    """Words in runs cut after a sentence's end, at pauses, and before ``MAX_SEGMENT_S``."""
    runs: list[list[Word]] = []
    for word in words:
        if runs and not _cut_before(runs[-1], word):
            runs[-1].append(word)
        else:
            runs.append([word])
    return runs


def _cut_before(run: list[Word], word: Word) -> bool:
    last = run[-1]
    return (
        bool(_SENTENCE_END.search(last.text.strip()))
        or word.start - last.end >= PAUSE_S
        or word.end - run[0].start > MAX_SEGMENT_S
    )


def pauses_between(speech: list[Region], max_silence_s: float | None) -> Pauses:
    """The gaps between speech regions at least ``max_silence_s`` long (none when it is None)."""
    if max_silence_s is None:
        return []
    regions = sorted((r.start, r.end) for r in speech)
    return [
        (end, start) for (_, end), (start, _) in itertools.pairwise(regions) if start - end >= max_silence_s
    ]


def _by_speaker(words: list[Word], speakers: SpeakerTurns | None) -> list[tuple[str | None, list[Word]]]:
    """A segment's words in runs of one speaker: a segment spanning a change of speaker is split
    there (on pyannote's sample this cut confusion from 0.23 to 0.06). Without speakers: one run."""
    if speakers is None:
        return [(None, words)]
    runs: list[tuple[str | None, list[Word]]] = []
    for word in words:
        speaker = speakers.dominant(word.start, word.end)
        if runs and runs[-1][0] == speaker:
            runs[-1][1].append(word)
        else:
            runs.append((speaker, [word]))
    return runs


def split_at_pauses(words: list[Word], pauses: Pauses) -> list[list[Word]]:
    """Words in runs that no pause crosses, each word trimmed to the speech on its side.

    The cross-attention timings often stretch a word over a pause, mostly the first word after
    it. So a word that ends after a pause ends was spoken after it; one that ends inside a pause
    goes to the side of the pause's middle where its own middle is.
    """
    if not pauses:
        return [words]
    pieces: list[list[Word]] = []
    last_side = -1
    for word in words:
        middle = (word.start + word.end) / 2
        side = sum(1 for start, end in pauses if word.end > end or middle >= (start + end) / 2)
        after = pauses[side - 1][1] if side > 0 else word.start
        before = pauses[side][0] if side < len(pauses) else word.end
        start = min(max(word.start, after), before)
        end = max(min(word.end, before), start)
        if side != last_side:
            pieces.append([])
            last_side = side
        pieces[-1].append(word.model_copy(update={"start": start, "end": end}))
    return pieces


def _runs(
    words: list[Word], speakers: SpeakerTurns | None, pauses: Pauses
) -> Iterator[tuple[str | None, list[Word]]]:
    for speaker, run in _by_speaker(words, speakers):
        for piece in split_at_pauses(run, pauses):
            yield speaker, piece


def join_text(words: Sequence[Word]) -> str:
    return "".join(w.text for w in words).strip()


def _tidy(word: Word) -> Word:
    return word.model_copy(update={"text": word.text.strip()})
