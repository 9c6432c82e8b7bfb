"""The ASR engine: Whisper on CTranslate2, batched over VAD windows, guarded, offline.

How one channel is transcribed (each step's module says why it is done that way, with the
measurements behind it):

1. ``vad``: Silero finds the speech; its regions are packed into windows of up to 30 s with
   long pauses shortened.
2. ``language``: unless the job names it, a speech-weighted vote of Whisper's language
   probabilities over the first batch of windows.
3. ``decoding``: batches of windows through the encoder once, then the decoder without
   timestamp tokens; ``guard`` judges every window's text and decodes the failing ones again
   (beam search, then sampling at rising temperatures). Words, their times and probabilities come
   from the decoder's cross-attention, so no alignment model is needed.
4. ``coverage``: speech that no word covers is read again on its own; what stays empty is an
   explicit ``no_speech`` segment.
5. ``segmenting``: words cut into segments at sentence ends and pauses, then at changes of
   speaker (``speakers``) and at TRD's pauses.
6. Optional: ``alternatives`` (n-best), ``alignment`` (wav2vec2 re-timing, by path),
   ``speakers`` (resemblyzer or a pyannote pipeline by path).

Measured by ``python -m bench.wer`` against WhisperX's own ``transcribe`` on the same audio
(see the README). Segments are produced lazily, a batch of windows at a time, so the caller can
report progress and stop between them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from functions.common.asr import TranscribeOptions
from functions.common.settings import Settings
from functions.common.transcript import Segment
from functions.transcribe import language
from functions.transcribe.alignment import Aligner
from functions.transcribe.alternatives import NBest
from functions.transcribe.audio import Audio, load_wav_channel
from functions.transcribe.decoding import Whisper
from functions.transcribe.guard import ladder
from functions.transcribe.model_cache import bundled_model_dir
from functions.transcribe.reading import ChannelReader, Encoded, Read
from functions.transcribe.segmenting import pauses_between, segments_of, silent_segment
from functions.transcribe.speakers import Diarizer, SpeakerTurns
from functions.transcribe.vad import TIGHT_PAD_S, Window, pack_windows, speech_regions

log = logging.getLogger(__name__)


class EngineRun:
    """One channel in progress (``ChannelRun``): segments pulled lazily; ``language`` is the
    detected (or given) one, and after the segments the one most of the speech was read in."""

    def __init__(
        self, language: str, segments: Iterator[Segment], reader: ChannelReader | None = None
    ) -> None:
        self._language = language
        self._segments = segments
        self._reader = reader

    @property
    def language(self) -> str:
        return self._reader.language if self._reader is not None else self._language

    def segments(self) -> Iterator[Segment]:
        return self._segments


@dataclass
class _Job:
    """One channel's fixed inputs while its batches are read."""

    audio: Audio
    channel: int
    options: TranscribeOptions
    languages: list[str]
    speakers: SpeakerTurns | None
    pauses: list[tuple[float, float]]
    hints: str | None = field(init=False)

    def __post_init__(self) -> None:
        self.hints = " ".join(self.options.hints) or None  # a prompt prefix that biases the decoder


class WhisperEngine:
    """The ASR engine of one worker process; build it once (model load takes a few seconds)."""

    def __init__(self, settings: Settings) -> None:
        # Never reach a model hub: every model comes from a local path.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        threads = settings.asr_threads or len(os.sched_getaffinity(0))
        self._batch_size = max(1, settings.asr_batch_size)
        self._beam_size = settings.asr_beam_size
        # The optional models first: a bad path fails before the Whisper load.
        self._aligner = (
            Aligner(settings.asr_align_model, settings.asr_device) if settings.asr_align_model else None
        )
        self._diarizer = Diarizer(
            settings.asr_diarize_model, settings.asr_device, settings.diarization_threshold, threads
        )
        self._model = _load_whisper(settings, threads)
        # One reader per Whisper task over the same model: the task is a token of the prompt.
        self._whispers = {task: Whisper(self._model, task) for task in ("transcribe", "translate")}
        self._whisper = self._whispers["transcribe"]

    def transcribe_channel(self, wav_path: Path, channel: int, options: TranscribeOptions) -> EngineRun:
        return self.transcribe_audio(load_wav_channel(wav_path, channel), channel, options)

    def transcribe_audio(self, audio: Audio, channel: int, options: TranscribeOptions) -> EngineRun:
        """One channel's 16 kHz float32 samples (the live lane's utterances come this way)."""
        chunk_s = min(options.max_chunk_s, options.window_s)
        speech = speech_regions(audio, chunk_s)
        windows = pack_windows(speech, chunk_s)
        if not windows:
            # No speech: nothing to decode. Without speech there is no language to detect.
            return EngineRun(options.language or "", iter(()))
        first = windows[: self._batch_size]
        encoded = self._whisper.encode([w.audio(audio) for w in first], options.window_s)
        languages = self._languages(options.language, encoded, first)
        tight = speech_regions(audio, chunk_s, TIGHT_PAD_S) if _needs_tight(options) else []
        speakers = (
            self._diarizer.turns(audio, tight, options.diarization_threshold)
            if options.speaker_labels
            else None
        )
        job = _Job(audio, channel, options, languages, speakers, pauses_between(tight, options.max_silence_s))
        whisper = self._whispers.get(options.task, self._whisper)
        attempts = ladder(self._beam_size, options.temperature)
        reader = ChannelReader(whisper, audio, languages, job.hints, attempts, options.window_s)
        segments = self._segments(job, reader, windows, encoded)
        if options.alternatives > 1 and options.task == "transcribe":
            nbest = NBest(self._model, languages[0], options, tight)
            segments = (nbest.add_alternatives(s, audio) for s in segments)
        return EngineRun(languages[0], segments, reader)

    def _languages(self, given: str | None, encoded: list[Encoded], windows: list[Window]) -> list[str]:
        if given:
            return [given]
        if not self._model.model.is_multilingual:
            return ["en"]
        probabilities = self._whisper.language_probabilities(encoded)
        return language.ranked(probabilities, [w.speech_s for w in windows])

    def _segments(
        self, job: _Job, reader: ChannelReader, windows: list[Window], first: list[Encoded]
    ) -> Iterator[Segment]:
        for reads in reader.batches(windows, self._batch_size, first):
            for read in reads:
                yield from self._segments_of(job, read)

    def _segments_of(self, job: _Job, read: Read) -> Iterator[Segment]:
        for region in read.silent:
            yield silent_segment(region, job.channel)
        words = read.words
        if not words:
            return
        if self._aligner is not None:
            words = self._aligner.retime(words, job.audio, job.languages[0])
        flags = tuple(sorted(f.value for f in read.flags))
        yield from segments_of(
            words, job.channel, flags, job.speakers, job.pauses, job.options.word_timestamps
        )


def _needs_tight(options: TranscribeOptions) -> bool:
    """Whether anything asks for the speech's exact extent (see ``vad.TIGHT_PAD_S``)."""
    return options.speaker_labels or options.max_silence_s is not None or options.alternatives > 1


def _load_whisper(settings: Settings, threads: int) -> Any:
    """faster-whisper's model object around the CTranslate2 Whisper model (from a local path)."""
    from faster_whisper import WhisperModel  # type: ignore[import-untyped]

    device, index = _split_device(settings.asr_device)
    model_dir = settings.asr_model or str(bundled_model_dir(settings.model_cache))
    return WhisperModel(
        model_dir,
        device=device,
        device_index=index,
        compute_type=_compute_type(settings),
        cpu_threads=threads,  # CTranslate2 threads; more than the cores only contend
        local_files_only=True,
    )


def _split_device(device: str) -> tuple[str, int]:
    """``cuda:1`` → (``cuda``, 1); ``cpu`` → (``cpu``, 0)."""
    name, _, index = device.partition(":")
    return name, int(index or 0)


def _compute_type(settings: Settings) -> str:
    """The configured compute type; ``auto`` (or empty) means float16 on GPU, int8 on CPU."""
    if settings.asr_compute_type in ("", "auto"):
        return "float16" if settings.asr_device.startswith("cuda") else "int8"
    return settings.asr_compute_type
