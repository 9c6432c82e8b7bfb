"""Make test speech with espeak-ng and ffmpeg (both Debian packages; no network, no models).

espeak-ng writes 22,050 Hz mono; ffmpeg resamples it to the engine's 16 kHz PCM. For
call-centre style tests, two recordings go on the left and right channels of one file.
"""

from __future__ import annotations

import gzip
import os
import re
import subprocess
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt


def espeak_wav(text: str, voice: str, path: Path, rate_hz: int = 16000, *, delay_s: float = 0.0) -> Path:
    """Speak text with an espeak-ng voice (e.g. ``en-us``, ``pt-br``) into a mono 16-bit WAV.

    ``delay_s`` puts that much silence before the speech (to check absolute times).
    """
    path = Path(path)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "espeak.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-w", str(raw), text], check=True)
        delay = ["-af", f"adelay={round(delay_s * 1000)}:all=1"] if delay_s > 0 else []
        _ffmpeg(
            "-i", str(raw), *delay, "-ac", "1", "-ar", str(rate_hz), "-c:a", "pcm_s16le", str(path)
        )  # fmt: skip
    return path


def stereo_wav(left: Path, right: Path, path: Path) -> Path:
    """Join two mono 16-bit WAVs of one rate into a stereo WAV (left = channel 0).

    The shorter side is padded with silence (ffmpeg's amerge would cut the longer one).
    """
    (rate, a), (rate_b, b) = _read_mono(left), _read_mono(right)
    if rate != rate_b:
        raise ValueError(f"{left} is {rate} Hz but {right} is {rate_b} Hz")
    length = max(a.size, b.size)
    frames = np.zeros((length, 2), dtype=np.int16)
    frames[: a.size, 0] = a
    frames[: b.size, 1] = b
    path = Path(path)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(frames.tobytes())
    return path


def silence_wav(seconds: float, path: Path, rate_hz: int = 16000) -> Path:
    """A mono WAV of digital silence."""
    path = Path(path)
    _ffmpeg(
        "-f", "lavfi", "-i", f"anullsrc=r={rate_hz}:cl=mono", "-t", str(seconds),
        "-c:a", "pcm_s16le", str(path),
    )  # fmt: skip
    return path


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def _read_mono(path: Path) -> tuple[int, npt.NDArray[np.int16]]:
    with wave.open(str(path), "rb") as wav:
        if wav.getnchannels() != 1 or wav.getsampwidth() != 2:
            raise ValueError(f"{path}: expected mono 16-bit PCM")
        return wav.getframerate(), np.frombuffer(wav.readframes(wav.getnframes()), np.int16)


# Real human speech: Asterisk's core prompts, as Debian packages them (CC-BY-SA-3.0). Each
# language is two packages: the texts (``core-sounds-XX.txt.gz``, lines ``name: text``) and the
# 8 kHz recordings. They are fetched once with ``apt-get download`` and unpacked with
# ``dpkg -x`` into a cache: nothing is installed and nothing large lives in git.
DEBIAN_VOICES = {
    "en": "en_US_f_Allison",
    "es": "es_MX_f_Allison",
    "fr": "fr_CA_f_June",
    "it": "it_IT_m_Carlo",
    "ru": "ru_RU_f_IvrvoiceRU",
}


@dataclass(frozen=True)
class Prompt:
    """One recorded prompt and what it says."""

    name: str
    text: str
    wav: Path  # 8 kHz mono 16-bit PCM, as shipped


def speech_cache() -> Path:
    return Path(os.environ.get("SHENAVA_SPEECH_CACHE", Path.home() / ".cache" / "shenava" / "speech"))


def debian_prompts(language: str, min_words: int = 1) -> list[Prompt]:
    """The prompts of one language whose recording exists, sorted by name; bracketed
    descriptions of tones (``[beep]``) are left out, they are not speech."""
    root = _unpacked(language)
    texts = gzip.decompress(
        (root / f"usr/share/doc/asterisk-core-sounds-{language}/core-sounds-{language}.txt.gz").read_bytes()
    ).decode("utf-8-sig")
    voice = root / "usr/share/asterisk/sounds" / DEBIAN_VOICES[language]
    prompts = []
    for line in texts.splitlines():
        name, sep, text = line.partition(":")
        # "(You are now muted.)": translators' notes in parentheses are not spoken
        text = " ".join(re.sub(r"\([^)]*\)", " ", text).split())
        if line.startswith(";") or not sep or not text or "[" in text:
            continue
        wav = voice / f"{name.strip()}.wav"
        if wav.is_file() and len(text.split()) >= min_words:
            prompts.append(Prompt(name.strip(), text, wav))
    return sorted(prompts, key=lambda p: p.name)


def _unpacked(language: str) -> Path:
    root = speech_cache() / f"asterisk-core-sounds-{language}"
    done = root / ".unpacked"
    if done.exists():
        return root
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root.parent) as tmp:
        packages = [f"asterisk-core-sounds-{language}", f"asterisk-core-sounds-{language}-wav"]
        if subprocess.run(["apt-get", "download", *packages], cwd=tmp, capture_output=True).returncode:
            # A fresh machine may have no package lists yet.
            subprocess.run(["apt-get", "update", "-qq"], check=True, capture_output=True)
            subprocess.run(["apt-get", "download", *packages], cwd=tmp, check=True, capture_output=True)
        for deb in Path(tmp).glob("*.deb"):
            subprocess.run(["dpkg", "-x", str(deb), str(root)], check=True)
    done.touch()
    return root


def concatenate(wavs: list[Path], pauses_s: list[float], path: Path, rate_hz: int = 16000) -> Path:
    """Mono WAVs joined into one at ``rate_hz``, ``pauses_s[i]`` of silence after the i-th."""
    import soxr

    pieces: list[npt.NDArray[np.int16]] = []
    for wav, pause in zip(wavs, pauses_s, strict=True):
        rate, samples = _read_mono(wav)
        if rate != rate_hz:
            samples = soxr.resample(samples, rate, rate_hz).astype(np.int16)
        pieces += [samples, np.zeros(round(pause * rate_hz), dtype=np.int16)]
    path = Path(path)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate_hz)
        out.writeframes(np.concatenate(pieces).tobytes())
    return path
