"""A WAV file arriving in pieces: the RIFF header parsed once, then whole PCM frames.

Live clients send a WAV file (header first) cut into windows of any size, so the header, a
chunk or a frame may be split across messages. Only 16-bit PCM is accepted (plain or
WAVE_FORMAT_EXTENSIBLE), any sample rate from 8 to 192 kHz, 1 to 8 channels. A ``data`` size of
0 or 0xFFFFFFFF (what recorders write when they do not know the length yet) means "until the
end"; a real size is honoured and bytes after it (trailing chunks) are not audio.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from functions.common.pcm16 import float_samples

MAX_HEADER_BYTES = 64 * 1024  # fmt, LIST, … before the audio; more is not a header
PCM, EXTENSIBLE = 1, 0xFFFE
UNKNOWN_SIZES = {0, 0xFFFFFFFF}


class WavHeaderError(ValueError):
    """The stream does not start with a WAV header this service can read."""


@dataclass(frozen=True)
class WavFormat:
    channels: int
    sample_rate: int

    @property
    def frame_bytes(self) -> int:
        return 2 * self.channels

    @property
    def byte_rate(self) -> int:
        return self.frame_bytes * self.sample_rate


class WavStreamReader:
    def __init__(self) -> None:
        self._buffer = bytearray()
        self.format: WavFormat | None = None
        self._data_left: int | None = None  # None = until the end
        self.header_bytes = 0

    def feed(self, data: bytes) -> bytes:
        """Append bytes; return the whole PCM frames now available (possibly none)."""
        self._buffer += data
        if self.format is None:
            self._parse_header()
            if self.format is None:
                return b""
        usable = len(self._buffer)
        if self._data_left is not None:
            usable = min(usable, self._data_left)
        usable -= usable % self.format.frame_bytes
        pcm = bytes(self._buffer[:usable])
        del self._buffer[:usable]
        if self._data_left is not None:
            self._data_left -= usable
            if self._data_left < self.format.frame_bytes:
                self._buffer.clear()  # what follows the data chunk is not audio
        return pcm

    def _parse_header(self) -> None:
        buf = self._buffer
        if buf[:4] != b"RIFF"[: len(buf)] or (len(buf) >= 12 and buf[8:12] != b"WAVE"):
            raise WavHeaderError("the stream must start with a RIFF/WAVE header")
        fmt: WavFormat | None = None
        at = 12
        while len(buf) >= at + 8:
            chunk, size = bytes(buf[at : at + 4]), struct.unpack_from("<I", buf, at + 4)[0]
            if chunk == b"data":
                if fmt is None:
                    raise WavHeaderError("the WAV header has no fmt chunk before its data")
                self.format, self.header_bytes = fmt, at + 8
                self._data_left = None if size in UNKNOWN_SIZES else size
                del buf[: at + 8]
                return
            at_next = at + 8 + size + (size & 1)
            if at_next + 8 > MAX_HEADER_BYTES:
                raise WavHeaderError(f"no WAV data chunk within the first {MAX_HEADER_BYTES} bytes")
            if len(buf) < at_next:
                return  # the chunk continues in the next message
            if chunk == b"fmt ":
                fmt = parse_fmt(bytes(buf[at + 8 : at + 8 + size]))
            at = at_next


def parse_fmt(body: bytes) -> WavFormat:
    if len(body) < 16:
        raise WavHeaderError("the WAV fmt chunk is too short")
    tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", body)
    if tag == EXTENSIBLE and len(body) >= 26:
        tag = struct.unpack_from("<H", body, 24)[0]  # the sub-format GUID starts with the tag
    if tag != PCM or bits != 16:
        raise WavHeaderError(f"only 16-bit PCM WAV is supported (format {tag}, {bits} bits)")
    if not 1 <= channels <= 8:
        raise WavHeaderError(f"the WAV has {channels} channels; 1 to 8 are supported")
    if not 8000 <= rate <= 192_000:
        raise WavHeaderError(f"the WAV sample rate {rate} Hz is outside 8000-192000 Hz")
    return WavFormat(channels, rate)


def pcm_to_mono(pcm: bytes, fmt: WavFormat) -> npt.NDArray[np.float32]:
    """Interleaved 16-bit PCM → mono float32 in [-1, 1] (channels averaged)."""
    samples = float_samples(pcm)
    if fmt.channels > 1:
        samples = samples.reshape(-1, fmt.channels).mean(axis=1)
    return samples


def wav_header(fmt: WavFormat, data_bytes: int) -> bytes:
    """A canonical 44-byte PCM header for ``data_bytes`` of audio."""
    return (
        b"RIFF"
        + struct.pack("<I", 36 + data_bytes)
        + b"WAVE"
        + b"fmt "
        + struct.pack("<IHHIIHH", 16, PCM, fmt.channels, fmt.sample_rate, fmt.byte_rate, fmt.frame_bytes, 16)
        + b"data"
        + struct.pack("<I", data_bytes)
    )
