"""Subtitles and plain formats of a transcript: SRT, WebVTT, TXT and TSV, one renderer for every door.

Cues as subtitle editors expect them: at most ``MAX_LINE`` (42) characters a line, ``MAX_LINES``
(2) lines and ``MAX_CUE_S`` (7 s) a cue, cut between words at their times; the speaker when one is
known, or the channel of a stereo file, in front of each cue. A segment with empty text is the
engine's explicit "no speech here" and renders nothing. Times are media time (seconds from the
start, as in the transcript); a segment without word times shares its time out by characters.

TSV follows WhisperX's columns (``start``, ``end`` in integer milliseconds, ``text``), one row per
segment, with ``speaker`` and ``channel`` after them. TXT is the text in turns of speaker.

The dialects expose these additively (``format=srt|vtt|txt|tsv``); ``FORMATS`` gives each one's
media type, and ``attachment`` the ``Content-Disposition`` naming the file after the job's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

from functions.common.transcript import Segment, Transcript

MAX_LINE = 42
MAX_LINES = 2
MAX_CUE_S = 7.0

# format → its media type (text, UTF-8)
FORMATS: dict[str, str] = {
    "srt": "application/x-subrip; charset=utf-8",
    "vtt": "text/vtt; charset=utf-8",
    "txt": "text/plain; charset=utf-8",
    "tsv": "text/tab-separated-values; charset=utf-8",
}


@dataclass(frozen=True)
class TimedWord:
    text: str
    start: float
    end: float


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    speaker: str
    lines: tuple[str, ...]


def speaker_name(speaker: str) -> str:
    """As shown: a bare number (TRD's speakers) reads ``Speaker 2``."""
    return f"Speaker {speaker}" if re.fullmatch(r"[0-9]+", speaker) else speaker


def speaker_of(segment: Segment, channels: int) -> str:
    if segment.speaker:
        return speaker_name(segment.speaker)
    return f"Channel {segment.channel + 1}" if channels > 1 else ""


def words_of(segment: Segment) -> list[TimedWord]:
    """The segment's words; without word times, its time shared out by characters."""
    if segment.words:
        return [TimedWord(w.text, w.start, w.end) for w in segment.words]
    texts = segment.text.split()
    total = sum(len(t) for t in texts) or 1
    span = segment.end - segment.start
    found, at = [], segment.start
    for n, text in enumerate(texts):
        length = span * len(text) / total
        found.append(TimedWord((" " if n else "") + text, at, at + length))
        at += length
    return found


def join_words(words: list[TimedWord]) -> str:
    """Whisper's words carry their leading space; words without one are joined with a space."""
    if any(w.text[:1].isspace() for w in words):
        return " ".join("".join(w.text for w in words).split())
    return " ".join(w.text.strip() for w in words).strip()


def wrap(text: str) -> list[str]:
    """Greedy lines of at most MAX_LINE characters (a longer single word stays whole)."""
    lines: list[str] = []
    for word in text.split():
        if lines and len(lines[-1]) + 1 + len(word) <= MAX_LINE:
            lines[-1] += f" {word}"
        else:
            lines.append(word)
    return lines


def _cue(words: list[TimedWord], speaker: str) -> Cue:
    return Cue(words[0].start, words[-1].end, speaker, tuple(wrap(join_words(words))))


def _segment_cues(segment: Segment, speaker: str) -> list[Cue]:
    """The segment cut at word times: a cue closes before the word that would make it too long
    (with its speaker label, in lines) or too long-lasting."""
    prefix = f"{speaker}: " if speaker else ""
    cues: list[Cue] = []
    current: list[TimedWord] = []
    for word in words_of(segment):
        too_long = len(wrap(prefix + join_words([*current, word]))) > MAX_LINES
        if current and (too_long or word.end - current[0].start > MAX_CUE_S):
            cues.append(_cue(current, speaker))
            current = []
        current.append(word)
    if current:
        cues.append(_cue(current, speaker))
    return cues


def _spoken(transcript: Transcript) -> list[Segment]:
    """Segments with text, in time order (channels interleaved)."""
    ordered = sorted(transcript.segments, key=lambda s: (s.start, s.channel))
    return [s for s in ordered if s.text.strip()]


def cues(transcript: Transcript) -> list[Cue]:
    found: list[Cue] = []
    for segment in _spoken(transcript):
        found.extend(_segment_cues(segment, speaker_of(segment, transcript.channels)))
    return found


def stamp(seconds: float, separator: str) -> str:
    millis = round(max(0.0, seconds) * 1000)
    hours, minutes, secs = millis // 3_600_000, millis // 60_000 % 60, millis // 1000 % 60
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis % 1000:03d}"


def _end(cue: Cue) -> float:
    """A cue lasts at least a millisecond (a parser refuses an empty one)."""
    return max(cue.end, cue.start + 0.001)


def to_srt(transcript: Transcript) -> str:
    blocks = []
    for number, cue in enumerate(cues(transcript), start=1):
        lines = wrap((f"{cue.speaker}: " if cue.speaker else "") + " ".join(cue.lines))
        times = f"{stamp(cue.start, ',')} --> {stamp(_end(cue), ',')}"
        blocks.append(f"{number}\n{times}\n" + "\n".join(lines) + "\n\n")  # each block ends blank
    return "".join(blocks)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_vtt(transcript: Transcript) -> str:
    """WebVTT; the speaker as a voice span (``<v Name>``), which players show as they choose."""
    blocks = ["WEBVTT\n"]
    for cue in cues(transcript):
        voice = f"<v {re.sub(r'[<>&]', '', cue.speaker)}>" if cue.speaker else ""
        times = f"{stamp(cue.start, '.')} --> {stamp(_end(cue), '.')}"
        blocks.append(f"{times}\n{voice}" + "\n".join(_escape(line) for line in cue.lines) + "\n")
    return "\n".join(blocks)


def to_text(transcript: Transcript) -> str:
    """The text, a paragraph per turn, each turn headed by its speaker (or channel) when known."""
    lines: list[str] = []
    speaker: str | None = None
    for segment in _spoken(transcript):
        who = speaker_of(segment, transcript.channels)
        if who and who != speaker:
            lines.append(("\n" if lines else "") + f"{who}:")
        speaker = who
        lines.append(" ".join(segment.text.split()))
    return "\n".join(lines) + "\n" if lines else ""


def _cell(text: str) -> str:
    return " ".join(text.split())  # no tab or line break inside a cell


def to_tsv(transcript: Transcript) -> str:
    rows = ["start\tend\ttext\tspeaker\tchannel"]
    for s in _spoken(transcript):
        who = speaker_name(s.speaker) if s.speaker else ""
        rows.append(
            f"{round(s.start * 1000)}\t{round(s.end * 1000)}\t{_cell(s.text)}\t{_cell(who)}\t{s.channel}"
        )
    return "\n".join(rows) + "\n"


RENDERERS = {"srt": to_srt, "vtt": to_vtt, "txt": to_text, "tsv": to_tsv}


def render(transcript: Transcript, fmt: str) -> str:
    """The transcript in ``fmt`` (one of ``FORMATS``)."""
    return RENDERERS[fmt](transcript)


def file_name(filename: str, fmt: str) -> str:
    """``call.wav`` → ``call.srt``: the media's name with the format's extension."""
    stem = filename.rsplit("/", 1)[-1].rsplit(".", 1)[0] if "." in filename else filename
    return f"{stem or 'transcript'}.{fmt}"


def attachment(filename: str, disposition: str = "attachment") -> str:
    """A ``Content-Disposition`` that saves under ``filename`` (RFC 6266; RFC 5987 for non-ASCII);
    ``inline`` for what a browser should show or play."""
    ascii_name = re.sub(r"[^A-Za-z0-9._ -]", "_", filename)
    if ascii_name == filename:
        return f'{disposition}; filename="{filename}"'
    return f"{disposition}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"
