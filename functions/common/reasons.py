"""What a failure reason may tell the caller: what is wrong with their media, not where we kept it.

ffprobe and ffmpeg start their errors with the file they read (``/tmp/shenava-ingest-…/source:
Invalid data found when processing input``), and a reason can quote other tools' messages. The
caller never sees those paths: they name the server's temporary directories and say nothing
about the media. ``tool_message`` takes the tool's last line without the path; ``public_reason``
replaces any server temporary path left in a stored reason (also reasons stored before this
rule) with "the file".
"""

from __future__ import annotations

import re
from pathlib import Path

# An absolute path (at the start of a word: not a URL's path) with a component made by Shenava's
# temporary files (shenava-fetch-…, -ingest-…, -upload-…, -asr-…), up to a space, quote or colon.
TEMP_PATH = re.compile(r"(?<![^\s'\"(=])(?:/[^/\s:'\"()]+)*/shenava-[^/\s:'\"()]*(?:/[^\s:'\"()]*)?")
TOOL_CONTEXT = re.compile(r"^\[[^\]]*@ ?0x[0-9a-fA-F]+\]\s*")  # ffmpeg's "[mp3 @ 0x55d…] "


TOOL_PREFIX = re.compile(TEMP_PATH.pattern + r": ")  # "<path>: <what is wrong>", as ffmpeg writes


def public_reason(reason: str) -> str:
    return TEMP_PATH.sub("the file", TOOL_PREFIX.sub("", reason))


def tool_message(stderr: bytes, *paths: Path) -> str:
    """The last line ffprobe/ffmpeg wrote, about the media, without the server's file paths."""
    lines = [line.strip() for line in stderr.decode(errors="replace").splitlines() if line.strip()]
    if not lines:
        return ""
    line = TOOL_CONTEXT.sub("", lines[-1])
    for path in paths:
        line = line.replace(f"{path}: ", "").replace(str(path), "the file")
    return public_reason(line)
