"""The WhisperX engine: VAD-chunked, batched Whisper with word timings, offline, on CPU or GPU.

How one channel is transcribed, and why this way:

1. **VAD (WhisperX's).** ``whisperx.load_model`` gives a pipeline holding the CTranslate2
   Whisper model and WhisperX's bundled pyannote segmentation VAD (shipped inside the whisperx
   wheel, so nothing is downloaded). The VAD runs over the channel and WhisperX's
   ``merge_chunks`` cuts the speech into chunks of at most 30 s, exactly as
   ``FasterWhisperPipeline.transcribe`` does. No speech → no segments: the decoder never sees
   silence, so it cannot hallucinate text for it.
2. **Batched decoding with word timings (faster-whisper's).** WhisperX's own ``transcribe``
   decodes those chunks in batches but returns only chunk text (no words, no timings inside a
   chunk). faster-whisper's ``BatchedInferencePipeline`` decodes the same way (one encoder pass
   per chunk, batched, no condition-on-previous-text) and, with ``word_timestamps=True``, adds
   word timings from the decoder's cross-attention (DTW) over the encoder output it already
   has, plus each word's probability. Handing it WhisperX's chunks as ``clip_timestamps`` keeps
   WhisperX's VAD and chunking and needs no alignment model; each clip is decoded at its own
   offset, so times are absolute in the file. Non-batched ``WhisperModel.transcribe`` would
   decode chunk by chunk with temperature fallback: slower, and unneeded after the VAD.
3. **Timestamp tokens on.** Unlike WhisperX (``without_timestamps=True``), the decoder predicts
   Whisper's timestamp tokens, so a chunk comes back as Whisper's own sentence-like segments
   rather than one 30 s block. Measured here it costs nothing (11 s clip: 1.6 s either way;
   52 s: 6.2 s with, 8.3-9.8 s without) and it is more robust: on repetitive speech the
   timestamp-free decoder looped past the end of the audio, repeating sentences until its
   token limit, while the timestamped one closed the segment where the speech ended.
4. **Language.** When not given, faster-whisper detects it on the first 30 s of *speech*
   (VAD-trimmed features), more reliable than WhisperX's first 30 s of raw audio.
5. **Confidence.** A segment's confidence is the mean of its words' probabilities: per
   segment and honest (``avg_logprob`` is only per chunk in batched decoding). A chunk that
   Whisper itself judges non-speech (``no_speech_prob`` > 0.6 with ``avg_logprob`` < -1,
   Whisper's usual rule) is dropped.
6. **Optional refinements, from local paths only.** With ``asr_align_model`` (a wav2vec2 CTC
   model directory) each segment is re-timed with ``whisperx.align``; words keep faster-whisper's
   text and probability, and keep their own times where alignment gives none.
7. **Speakers** (``speaker_labels``). Each segment gets the speaker whose turns overlap it most.
   The turns come from ``diarization.diarize`` (resemblyzer embeddings over the VAD's speech
   regions, clustered with the job's threshold or ``diarization_threshold``; fully offline), or,
   when ``asr_diarize_model`` names a pyannote pipeline directory, from WhisperX's
   ``DiarizationPipeline``.

Segments are produced lazily: VAD and language detection run when ``transcribe_channel`` is
called, decoding happens as the caller pulls segments.
"""

from __future__ import annotations

import logging
import os
import wave
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from functions.common.settings import Settings
from functions.common.transcript import Segment, Word
from functions.transcribe.diarization import diarize
from functions.transcribe.engine_protocol import TranscribeOptions
from functions.transcribe.model_cache import bundled_model_dir

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
_CHUNK_S = 30  # Whisper's window; WhisperX's default VAD chunk size
_VAD_ONSET, _VAD_OFFSET = 0.500, 0.363  # whisperx.asr.load_model's defaults
_NO_SPEECH_PROB, _NO_SPEECH_LOGPROB = 0.6, -1.0  # Whisper's "this was silence" rule
_MIN_CONFIDENCE = 1e-6  # a word probability can underflow to 0.0; confidences stay in (0, 1]

Audio = npt.NDArray[np.float32]


@dataclass
class WhisperXRun:
    """One channel in progress (``ChannelRun``): language known, segments pulled lazily."""

    language: str
    _segments: Iterator[Segment]

    def segments(self) -> Iterator[Segment]:
        return self._segments


class WhisperXEngine:
    """The ASR engine of one worker process; build it once (model load takes ~10 s)."""

    def __init__(self, settings: Settings) -> None:
        # Never reach a model hub: every model comes from a local path.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        _quiet_library_logs()  # before whisperx's first import installs its own handler
        import torch

        threads = settings.asr_threads or len(os.sched_getaffinity(0))
        torch.set_num_threads(threads)  # the VAD, alignment and diarization run in torch
        self._batch_size = max(1, settings.asr_batch_size)
        self._diarization_threshold = settings.diarization_threshold
        # The optional models first: a bad path fails before the 10 s Whisper load.
        self._aligner = (
            _Aligner(settings.asr_align_model, settings.asr_device) if settings.asr_align_model else None
        )
        self._diarizer: Any = None
        if settings.asr_diarize_model:
            from whisperx.diarize import DiarizationPipeline  # type: ignore[import-untyped]

            self._diarizer = DiarizationPipeline(settings.asr_diarize_model, device=settings.asr_device)
        self._pipeline = _load_whisperx(settings, threads)

    def transcribe_channel(self, wav_path: Path, channel: int, options: TranscribeOptions) -> WhisperXRun:
        from faster_whisper import BatchedInferencePipeline  # type: ignore[import-untyped]

        audio = load_wav_channel(wav_path, channel)
        chunks, speech = self._speech_chunks(audio)
        if not chunks:
            # No speech: nothing to decode. Without speech there is no language to detect.
            return WhisperXRun(options.language or "", iter(()))
        # A fresh pipeline per run: it keeps per-run state and wraps the loaded model cheaply.
        decoded, info = BatchedInferencePipeline(self._pipeline.model).transcribe(
            audio,
            language=options.language,
            clip_timestamps=chunks,
            batch_size=self._batch_size,
            word_timestamps=True,  # always: segment bounds and confidence come from words
            without_timestamps=False,  # Whisper's own segments; see the module docstring
            hotwords=" ".join(options.hints) or None,  # a prompt prefix that biases the decoder
        )
        speakers = self._speakers(audio, speech, options) if options.speaker_labels else None
        segments = self._segments(decoded, audio, info.language, channel, options, speakers)
        return WhisperXRun(info.language, segments)

    def _speech_chunks(self, audio: Audio) -> tuple[list[dict[str, float]], list[tuple[float, float]]]:
        """WhisperX's VAD: speech merged into chunks of at most 30 s, and the speech regions (s)."""
        from whisperx.vads import Pyannote  # type: ignore[import-untyped]

        if audio.size == 0:
            return [], []
        vad = self._pipeline.vad_model
        scores = vad({"waveform": Pyannote.preprocess_audio(audio), "sample_rate": SAMPLE_RATE})
        merged = Pyannote.merge_chunks(scores, _CHUNK_S, onset=_VAD_ONSET, offset=_VAD_OFFSET)
        chunks = [{"start": c["start"], "end": c["end"]} for c in merged if c["end"] > c["start"]]
        # The regions inside each chunk: diarization embeds speech, not the pauses a chunk spans.
        speech = [(float(s), float(e)) for c in merged for s, e in c["segments"] if e > s]
        return chunks, speech

    def _speakers(
        self, audio: Audio, speech: list[tuple[float, float]], options: TranscribeOptions
    ) -> _SpeakerTurns:
        if self._diarizer is not None:
            turns = self._diarizer(audio)
            return _SpeakerTurns([(float(r.start), float(r.end), str(r.speaker)) for r in turns.itertuples()])
        threshold = options.diarization_threshold
        if threshold is None:
            threshold = self._diarization_threshold
        return _SpeakerTurns([(t.start, t.end, t.speaker) for t in diarize(audio, speech, threshold)])

    def _segments(
        self,
        decoded: Iterator[Any],
        audio: Audio,
        language: str,
        channel: int,
        options: TranscribeOptions,
        speakers: _SpeakerTurns | None,
    ) -> Iterator[Segment]:
        for decoded_segment in decoded:
            if (
                decoded_segment.no_speech_prob > _NO_SPEECH_PROB
                and decoded_segment.avg_logprob < _NO_SPEECH_LOGPROB
            ):
                continue
            words = _words_of(decoded_segment.words or [])
            if not words:
                continue
            if self._aligner is not None:
                words = self._aligner.retime(words, audio, language)
            for speaker, run in _by_speaker(words, speakers):
                yield Segment(
                    channel=channel,
                    speaker=speaker,
                    start=run[0].start,
                    end=run[-1].end,
                    text=_join_text(run),
                    confidence=sum(w.confidence for w in run) / len(run),
                    words=tuple(_tidy(w) for w in run) if options.word_timestamps else (),
                )


def load_wav_channel(path: Path, channel: int) -> Audio:
    """One channel of a 16 kHz PCM WAV (16- or 32-bit) as float32 samples in [-1, 1]."""
    with wave.open(str(path), "rb") as wav:
        rate, channels, width = wav.getframerate(), wav.getnchannels(), wav.getsampwidth()
        frames = wav.readframes(wav.getnframes())
    if rate != SAMPLE_RATE:
        raise ValueError(f"{path}: {rate} Hz; the engine needs {SAMPLE_RATE} Hz")
    if not 0 <= channel < channels:
        raise ValueError(f"{path}: no channel {channel} (it has {channels})")
    if width not in (2, 4):
        raise ValueError(f"{path}: {8 * width}-bit samples; the engine reads 16- or 32-bit PCM")
    dtype = np.int16 if width == 2 else np.int32
    samples = np.frombuffer(frames, dtype=dtype).reshape(-1, channels)[:, channel]
    return (samples.astype(np.float32) / float(np.iinfo(dtype).max + 1)).astype(np.float32)


def _words_of(raw: Sequence[Any]) -> list[Word]:
    """faster-whisper words (leading space kept, so text can be rebuilt exactly)."""
    return [
        Word(
            text=w.word,
            start=float(w.start),
            end=float(w.end),
            confidence=min(1.0, max(_MIN_CONFIDENCE, float(w.probability))),
        )
        for w in raw
        if w.word.strip()
    ]


def _by_speaker(words: list[Word], speakers: _SpeakerTurns | None) -> list[tuple[str | None, list[Word]]]:
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


def _join_text(words: Sequence[Word]) -> str:
    return "".join(w.text for w in words).strip()


def _tidy(word: Word) -> Word:
    return word.model_copy(update={"text": word.text.strip()})


class _Aligner:
    """Optional wav2vec2 re-timing of words (``whisperx.align``) from a local model directory."""

    def __init__(self, model_dir: str, device: str) -> None:
        import whisperx

        # whisperx.align splits sentences with NLTK's punkt_tab data and would try to download
        # it when missing; refuse at start-up rather than fail offline at the first job.
        if not _punkt_installed("en"):
            raise RuntimeError("SHENAVA_ASR_ALIGN_MODEL needs NLTK's punkt_tab data (nltk_data) installed")
        # The language in the metadata only steers text splitting; it is set per run.
        self._model, self._metadata = whisperx.load_align_model(
            "en", device, model_name=model_dir, model_cache_only=True
        )
        self._device = device
        self._unsupported: set[str] = set()

    def retime(self, words: list[Word], audio: Audio, language: str) -> list[Word]:
        import whisperx

        if not _punkt_installed(language):
            if language not in self._unsupported:
                log.warning("no NLTK punkt_tab data for %r: words keep Whisper's timings", language)
                self._unsupported.add(language)
            return words
        segment = {"text": _join_text(words), "start": words[0].start, "end": words[-1].end}
        metadata = {**self._metadata, "language": language}
        result = whisperx.align([segment], self._model, metadata, audio, self._device)
        aligned = [w for s in result["segments"] for w in s.get("words", [])]
        if len(aligned) != len(words):
            return words  # the two tokenisations disagree: keep faster-whisper's timings
        retimed = [
            w.model_copy(update={"start": float(a["start"]), "end": float(a["end"])})
            if "start" in a and "end" in a
            else w
            for w, a in zip(words, aligned, strict=True)
        ]
        return _monotonic(retimed)


def _punkt_installed(language: str) -> bool:
    """Whether NLTK has the punkt_tab sentence model whisperx.align uses for this language."""
    import nltk  # type: ignore[import-untyped]
    from whisperx.utils import PUNKT_LANGUAGES  # type: ignore[import-untyped]

    try:
        nltk.data.find(f"tokenizers/punkt_tab/{PUNKT_LANGUAGES.get(language, 'english')}/")
    except LookupError:
        return False
    return True


def _monotonic(words: list[Word]) -> list[Word]:
    """Make times non-decreasing after mixing aligned and unaligned words."""
    out: list[Word] = []
    last = 0.0
    for w in words:
        start = max(w.start, last)
        end = max(w.end, start)
        out.append(w.model_copy(update={"start": start, "end": end}))
        last = end
    return out


class _SpeakerTurns:
    """Diarization turns (start, end, speaker) of one channel; a segment gets the speaker overlapping
    it most, or the nearest turn's when none overlaps."""

    def __init__(self, turns: list[tuple[float, float, str]]) -> None:
        from whisperx.diarize import IntervalTree

        self._tree = IntervalTree(turns)

    def dominant(self, start: float, end: float) -> str | None:
        overlap: dict[str, float] = {}
        for speaker, seconds in self._tree.query(start, end):
            overlap[speaker] = overlap.get(speaker, 0.0) + seconds
        if overlap:
            return max(overlap.items(), key=lambda item: item[1])[0]
        return self._tree.find_nearest((start + end) / 2)  # type: ignore[no-any-return]


def _load_whisperx(settings: Settings, threads: int) -> Any:
    """WhisperX's pipeline: the CTranslate2 Whisper model and the bundled pyannote VAD."""
    import whisperx  # type: ignore[import-untyped]

    device, index = _split_device(settings.asr_device)
    model_dir = settings.asr_model or str(bundled_model_dir(settings.model_cache))
    pipeline = whisperx.load_model(
        model_dir,
        device=device,
        device_index=index,
        compute_type=_compute_type(settings),
        threads=threads,  # CTranslate2 threads; more than the cores only contend
        local_files_only=True,
    )
    return pipeline


def _split_device(device: str) -> tuple[str, int]:
    """``cuda:1`` → (``cuda``, 1); ``cpu`` → (``cpu``, 0)."""
    name, _, index = device.partition(":")
    return name, int(index or 0)


def _compute_type(settings: Settings) -> str:
    """The configured compute type; ``auto`` (or empty) means float16 on GPU, int8 on CPU."""
    if settings.asr_compute_type in ("", "auto"):
        return "float16" if settings.asr_device.startswith("cuda") else "int8"
    return settings.asr_compute_type


def _quiet_library_logs() -> None:
    """Route whisperx's logs through the application's logging; hush Lightning's upgrade notice.

    whisperx installs its own stdout handler at INFO with propagation off; give it a
    NullHandler instead (its get_logger re-installs the handler when it finds none) and let
    records propagate at WARNING. Lightning announces at INFO, on every load, that it upgraded
    the bundled VAD checkpoint in memory: not actionable, so only that logger is raised.
    """
    wx = logging.getLogger("whisperx")
    wx.handlers[:] = [logging.NullHandler()]
    wx.propagate = True
    wx.setLevel(logging.WARNING)
    for name in ("lightning.pytorch.utilities.migration.utils",
                 "pytorch_lightning.utilities.migration.utils"):  # fmt: skip
        logging.getLogger(name).setLevel(logging.WARNING)
