"""Who speaks when, for ``speaker_labels``: turns from diarization, and a segment's speaker."""

from __future__ import annotations

from typing import Any

from functions.transcribe.audio import Audio
from functions.transcribe.diarization import diarize
from functions.transcribe.vad import Region


class SpeakerTurns:
    """Diarization turns (start, end, speaker) of one channel; a stretch of time gets the speaker
    overlapping it most, or the nearest turn's when none overlaps."""

    def __init__(self, turns: list[tuple[float, float, str]]) -> None:
        from whisperx.diarize import IntervalTree  # type: ignore[import-untyped]

        self._tree = IntervalTree(turns)

    def dominant(self, start: float, end: float) -> str | None:
        overlap: dict[str, float] = {}
        for speaker, seconds in self._tree.query(start, end):
            overlap[speaker] = overlap.get(speaker, 0.0) + seconds
        if overlap:
            return max(overlap.items(), key=lambda item: item[1])[0]
        return self._tree.find_nearest((start + end) / 2)  # type: ignore[no-any-return]


class Diarizer:
    """The turns of a channel: resemblyzer embeddings over the VAD's speech clustered at a
    threshold (``diarization.diarize``, fully offline), or a pyannote pipeline from a local path
    (``asr_diarize_model``) through WhisperX's ``DiarizationPipeline``."""

    def __init__(self, pyannote_model: str, device: str, default_threshold: float, threads: int) -> None:
        self._threshold = default_threshold
        self._threads = threads
        self._pyannote: Any = None
        if pyannote_model:
            _torch_threads(threads)
            from whisperx.diarize import DiarizationPipeline

            self._pyannote = DiarizationPipeline(pyannote_model, device=device)

    def turns(self, audio: Audio, speech: list[Region], threshold: float | None) -> SpeakerTurns:
        _torch_threads(self._threads)
        if self._pyannote is not None:
            found = self._pyannote(audio)
            return SpeakerTurns([(float(r.start), float(r.end), str(r.speaker)) for r in found.itertuples()])
        chosen = self._threshold if threshold is None else threshold
        regions = [(r.start, r.end) for r in speech]
        return SpeakerTurns([(t.start, t.end, t.speaker) for t in diarize(audio, regions, chosen)])


def _torch_threads(threads: int) -> None:
    """torch (the voice encoders) on the worker's cores; imported only when speakers are asked for."""
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
