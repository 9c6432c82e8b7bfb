"""SRT, WebVTT and plain text from a transcript (Shenava JSON: times in seconds from the media's
start, words with their own times), rendered on the client until the server renders them
(issue 13); the console's ``subtitles.js`` follows the same rules.

Cues as subtitle editors expect them: at most 42 characters a line, 2 lines and 7 s a cue, cut
between words (at word times); the speaker, or the channel of a stereo file, in front.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

MAX_LINE = 42
MAX_LINES = 2
MAX_CUE_S = 7.0

Transcript = dict[str, Any]


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
    lines: list[str]


def speaker_name(speaker: str) -> str:
    """As shown: a bare number (TRD's speakers) reads ``Speaker 2``."""
    return f"Speaker {speaker}" if re.fullmatch(r"[0-9]+", speaker) else speaker


def speaker_of(segment: dict[str, Any], channels: int) -> str:
    if segment.get("speaker"):
        return speaker_name(str(segment["speaker"]))
    return f"Channel {segment.get('channel', 0) + 1}" if channels > 1 else ""


def words_of(segment: dict[str, Any]) -> list[TimedWord]:
    """The segment's words; without word times, its time shared out by characters."""
    if segment.get("words"):
        return [TimedWord(w["text"], float(w["start"]), float(w["end"])) for w in segment["words"]]
    texts = segment["text"].split()
    total = sum(len(t) for t in texts) or 1
    start, span = float(segment["start"]), float(segment["end"]) - float(segment["start"])
    found, at = [], start
    for n, text in enumerate(texts):
        length = span * len(text) / total
        found.append(TimedWord((" " if n else "") + text, at, at + length))
        at += length
    return found


def join_words(words: list[TimedWord]) -> str:
    """Whisper's words carry their leading space; words without one are joined with a space."""
    if any(w.text[:1].isspace() for w in words):
        return "".join(w.text for w in words).strip()
    return " ".join(w.text for w in words).strip()


def wrap(text: str) -> list[str]:
    """Greedy lines of at most MAX_LINE characters (a longer single word stays whole)."""
    lines: list[str] = []
    for word in text.split():
        if lines and len(lines[-1]) + 1 + len(word) <= MAX_LINE:
            lines[-1] += f" {word}"
        else:
            lines.append(word)
    return lines


def _segment_cues(segment: dict[str, Any], speaker: str) -> list[Cue]:
    prefix = f"{speaker}: " if speaker else ""
    cues: list[Cue] = []
    current: list[TimedWord] = []
    for word in words_of(segment):
        too_long = len(wrap(prefix + join_words([*current, word]))) > MAX_LINES
        if current and (too_long or word.end - current[0].start > MAX_CUE_S):
            cues.append(Cue(current[0].start, current[-1].end, speaker, wrap(join_words(current))))
            current = []
        current.append(word)
    if current:
        cues.append(Cue(current[0].start, current[-1].end, speaker, wrap(join_words(current))))
    return cues


def cues(transcript: Transcript) -> list[Cue]:
    channels = int(transcript.get("channels", 1))
    found: list[Cue] = []
    for segment in sorted(transcript["segments"], key=lambda s: (s["start"], s.get("channel", 0))):
        if segment["text"].strip():
            found.extend(_segment_cues(segment, speaker_of(segment, channels)))
    return found


def stamp(seconds: float, separator: str) -> str:
    millis = round(max(0.0, seconds) * 1000)
    hours, minutes, secs = millis // 3_600_000, millis // 60_000 % 60, millis // 1000 % 60
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis % 1000:03d}"


def _end(cue: Cue) -> float:
    return max(cue.end, cue.start + 0.001)


def to_srt(transcript: Transcript) -> str:
    blocks = []
    for number, cue in enumerate(cues(transcript), start=1):
        lines = wrap((f"{cue.speaker}: " if cue.speaker else "") + " ".join(cue.lines))
        times = f"{stamp(cue.start, ',')} --> {stamp(_end(cue), ',')}"
        blocks.append(f"{number}\n{times}\n" + "\n".join(lines) + "\n")
    return "\n".join(blocks)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_vtt(transcript: Transcript) -> str:
    blocks = ["WEBVTT\n"]
    for cue in cues(transcript):
        voice = f"<v {re.sub(r'[<>&]', '', cue.speaker)}>" if cue.speaker else ""
        times = f"{stamp(cue.start, '.')} --> {stamp(_end(cue), '.')}"
        blocks.append(f"{times}\n{voice}" + "\n".join(_escape(line) for line in cue.lines) + "\n")
    return "\n".join(blocks)


def to_text(transcript: Transcript) -> str:
    channels = int(transcript.get("channels", 1))
    lines: list[str] = []
    speaker: str | None = None
    for segment in sorted(transcript["segments"], key=lambda s: s["start"]):
        text = segment["text"].strip()
        if not text:
            continue
        who = speaker_of(segment, channels)
        if who and who != speaker:
            lines.append(("\n" if lines else "") + f"{who}:")
        speaker = who
        lines.append(text)
    return "\n".join(lines) + "\n"
