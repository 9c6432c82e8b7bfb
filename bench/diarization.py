"""Offline diarization on pyannote-audio's two-speaker sample: DER and speed, next to baselines.

The audio is ``sample.wav`` (30 s, 16 kHz, two speakers with some overlapped speech) and the
reference ``sample.rttm``, both shipped inside the installed ``pyannote-audio`` package. Speech
regions come from the engine's VAD (Silero, as in a real run).
The diarization error rate is ``pyannote.metrics``' DER with overlapped speech scored (a
one-speaker-at-a-time system misses the second voice), twice: with no collar and with the NIST
forgiveness of 0.25 s either side of each reference boundary (pyannote's ``collar=0.5``).

Printed, from the same run:

- baseline: every VAD speech region is one speaker (what diarization must beat);
- ``diarization.diarize`` at TRD's default threshold, and a sweep of thresholds around it;
- the transcript's segments: one speaker per Whisper segment (the one overlapping it most), and
  as the engine gives them, split at the words where the speaker changes;
- speed: diarization time per audio second (real-time factor), median of ``--runs``.

pyannote's own pretrained pipeline is no baseline here: it needs a hub download and a token.

    .venv/bin/python -m bench.diarization [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

from functions.common.asr import TranscribeOptions
from functions.common.settings import Settings
from functions.transcribe.audio import SAMPLE_RATE, load_wav_channel
from functions.transcribe.diarization import TRD_DEFAULT_THRESHOLD, SpeakerTurn, diarize
from functions.transcribe.engine import WhisperEngine
from functions.transcribe.speakers import SpeakerTurns
from functions.transcribe.vad import TIGHT_PAD_S, speech_regions

NIST_COLLAR = 0.5  # pyannote.metrics' collar is the total width: 0.25 s either side


def pyannote_sample() -> tuple[Path, Path]:
    """The two-speaker sample.wav and its sample.rttm from the installed pyannote-audio."""
    import pyannote.audio

    folder = Path(pyannote.audio.__file__).parent / "sample"
    return folder / "sample.wav", folder / "sample.rttm"


def der(turns: Iterable[SpeakerTurn], rttm: Path, duration: float, collar: float = 0.0) -> dict[str, float]:
    """pyannote.metrics' DER of the turns against the RTTM (its first file) over the whole file
    (``duration`` seconds), with its components as fractions of the reference speech."""
    from pyannote.core import Annotation, Segment, Timeline
    from pyannote.database.util import load_rttm
    from pyannote.metrics.diarization import DiarizationErrorRate

    reference = next(iter(load_rttm(str(rttm)).values()))
    hypothesis = Annotation()
    for turn in turns:
        hypothesis[Segment(turn.start, turn.end)] = turn.speaker
    whole = Timeline([Segment(0.0, duration)])
    detail = DiarizationErrorRate(collar=collar)(reference, hypothesis, uem=whole, detailed=True)
    total = detail["total"]
    return {
        "der": detail["diarization error rate"],
        "missed": detail["missed detection"] / total,
        "false_alarm": detail["false alarm"] / total,
        "confusion": detail["confusion"] / total,
    }


def show(name: str, turns: list[SpeakerTurn], rttm: Path, duration: float) -> None:
    strict, forgiving = der(turns, rttm, duration), der(turns, rttm, duration, NIST_COLLAR)
    speakers = len({t.speaker for t in turns})
    print(
        f"{name:<34} DER {strict['der']:.3f} (missed {strict['missed']:.3f}, false alarm "
        f"{strict['false_alarm']:.3f}, confusion {strict['confusion']:.3f})   "
        f"±0.25 s collar {forgiving['der']:.3f}   speakers {speakers}"
    )


def transcript_turns(engine: WhisperEngine, wav: Path) -> tuple[list[SpeakerTurn], list[SpeakerTurn]]:
    """The transcript's segments as turns: one speaker per Whisper segment (by most overlap), and
    as the engine gives them (segments split where the speaker changes). Prints both run times."""
    options = TranscribeOptions(language="en")
    started = time.perf_counter()
    whole = list(engine.transcribe_channel(wav, 0, options).segments())
    plain_s = time.perf_counter() - started
    started = time.perf_counter()
    labelled = list(engine.transcribe_channel(wav, 0, replace(options, speaker_labels=True)).segments())
    labelled_s = time.perf_counter() - started
    print(f"transcription: {plain_s:.2f} s without speaker labels, {labelled_s:.2f} s with")
    audio = load_wav_channel(wav, 0)
    speech = [(r.start, r.end) for r in speech_regions(audio, pad_s=TIGHT_PAD_S)]
    found = diarize(audio, speech, TRD_DEFAULT_THRESHOLD)
    turns = SpeakerTurns([(t.start, t.end, t.speaker) for t in found])
    per_segment = [SpeakerTurn(s.start, s.end, turns.dominant(s.start, s.end) or "?") for s in whole]
    split = [SpeakerTurn(s.start, s.end, s.speaker or "?") for s in labelled]
    return per_segment, split


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.diarization")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    wav, rttm = pyannote_sample()
    engine = WhisperEngine(Settings(asr_model="", asr_align_model="", asr_diarize_model=""))
    audio = load_wav_channel(wav, 0)
    seconds = audio.size / SAMPLE_RATE
    speech = [(r.start, r.end) for r in speech_regions(audio, pad_s=TIGHT_PAD_S)]
    print(f"pyannote-audio sample.wav: {seconds:.1f} s, VAD speech {sum(e - s for s, e in speech):.1f} s")
    show("baseline: all speech one speaker", [SpeakerTurn(s, e, "1") for s, e in speech], rttm, seconds)
    started = time.perf_counter()
    diarize(audio, speech, TRD_DEFAULT_THRESHOLD)  # the first call loads the encoder, JIT-compiles librosa
    print(f"first diarization (encoder load and JIT included): {time.perf_counter() - started:.2f} s")
    timings, turns = [], []
    for _ in range(args.runs):
        started = time.perf_counter()
        turns = diarize(audio, speech, TRD_DEFAULT_THRESHOLD)
        timings.append(time.perf_counter() - started)
    show(f"diarize, threshold {TRD_DEFAULT_THRESHOLD}", turns, rttm, seconds)
    for threshold in (-0.5, -0.45, -0.42, -0.39, -0.38, -0.3):
        show(f"  threshold {threshold}", diarize(audio, speech, threshold), rttm, seconds)
    per_segment, split = transcript_turns(engine, wav)
    show("transcript, a speaker per segment", per_segment, rttm, seconds)
    show("transcript, split at changes", split, rttm, seconds)
    took = statistics.median(timings)
    print(f"diarization {took:.2f} s for {seconds:.1f} s of audio: real-time factor {took / seconds:.3f}")


if __name__ == "__main__":
    main()
