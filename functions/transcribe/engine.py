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
7. **Pauses and chunk length (TRD's VAD settings).** ``max_chunk_s`` is ``merge_chunks``'s chunk
   size (a longer speech region is cut where the VAD is least sure of speech), capped at Whisper's
   30 s window. ``max_silence_s`` splits a segment wherever the VAD found a pause at least that
   long between two speech regions inside it (``_split_at_pauses`` says which side a word
   stretched over the pause belongs to). The split is of segments, not of decoding: the chunks stay as long as
   ``max_chunk_s`` allows, so the decoder keeps its context and the cost does not change (each
   chunk costs a full 30 s encoder pass, however short it is).
8. **Alternatives** (``alternatives`` > 1, TRD's ``decoder.max_sentences``). After a segment is
   made, its audio (padded by ``_NBEST_PAD_S`` where that pads with silence, not with the
   neighbours' speech) is decoded again on its own, without timestamps,
   by CTranslate2's beam search asking for several hypotheses (``_NBest``). The segment's own text
   stays first; hypotheses that read the same (ignoring case and punctuation) are dropped; the
   rest follow, best first, up to ``alternatives - 1``. Their confidence is the segment's, scaled
   by how much less probable per token each is than the best hypothesis
   (``exp(score - best score)``, CTranslate2's scores being length-normalised log-probabilities),
   so it never exceeds the first's and falls in the hypotheses' order. They have no word timings.
   Cost: one more 30 s encoder pass and a beam search per segment (shorter inputs make Whisper
   loop), only when asked for.
9. **Speakers** (``speaker_labels``). Each segment gets the speaker whose turns overlap it most.
   The turns come from ``diarization.diarize`` (resemblyzer embeddings over the VAD's speech
   regions, clustered with the job's threshold or ``diarization_threshold``; fully offline), or,
   when ``asr_diarize_model`` names a pyannote pipeline directory, from WhisperX's
   ``DiarizationPipeline``.

Segments are produced lazily: VAD and language detection run when ``transcribe_channel`` is
called, decoding happens as the caller pulls segments.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import re
import wave
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from functions.common.settings import Settings
from functions.common.transcript import Alternative, Segment, Word
from functions.transcribe.diarization import diarize
from functions.transcribe.engine_protocol import MAX_CHUNK_S, TranscribeOptions
from functions.transcribe.model_cache import bundled_model_dir

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
_VAD_ONSET, _VAD_OFFSET = 0.500, 0.363  # whisperx.asr.load_model's defaults
_NO_SPEECH_PROB, _NO_SPEECH_LOGPROB = 0.6, -1.0  # Whisper's "this was silence" rule
_MIN_CONFIDENCE = 1e-6  # a word probability can underflow to 0.0; confidences stay in (0, 1]
_MIN_CHUNK_S = 1.0  # shorter chunks would cost a 30 s encoder pass each for almost no speech
_NBEST_PAD_S = 0.3  # audio kept around a segment's words when it is decoded again
_NBEST_BEAM = 5  # faster-whisper's beam size; more hypotheses than alternatives, some read the same

Pauses = list[tuple[float, float]]

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
        chunks, speech = self._speech_chunks(audio, options.max_chunk_s)
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
        pauses = _pauses(speech, options.max_silence_s)
        segments = self._segments(decoded, audio, info.language, channel, options, speakers, pauses)
        if options.alternatives > 1:
            nbest = _NBest(self._pipeline.model, info.language, options, speech)
            segments = (nbest.add_alternatives(s, audio) for s in segments)
        return WhisperXRun(info.language, segments)

    def _speech_chunks(
        self, audio: Audio, chunk_s: float = MAX_CHUNK_S
    ) -> tuple[list[dict[str, float]], list[tuple[float, float]]]:
        """WhisperX's VAD: speech merged into chunks of at most ``chunk_s`` (≤ 30 s), and the speech
        regions (s) inside them."""
        from whisperx.vads import Pyannote  # type: ignore[import-untyped]

        if audio.size == 0:
            return [], []
        vad = self._pipeline.vad_model
        scores = vad({"waveform": Pyannote.preprocess_audio(audio), "sample_rate": SAMPLE_RATE})
        chunk_s = min(MAX_CHUNK_S, max(_MIN_CHUNK_S, chunk_s))
        merged = Pyannote.merge_chunks(scores, chunk_s, onset=_VAD_ONSET, offset=_VAD_OFFSET)
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
        pauses: Pauses,
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
            for speaker, run in _runs(words, speakers, pauses):
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


def _pauses(speech: list[tuple[float, float]], max_silence_s: float | None) -> Pauses:
    """The gaps between speech regions at least ``max_silence_s`` long (none when it is None)."""
    if max_silence_s is None:
        return []
    regions = sorted(speech)
    return [
        (end, start) for (_, end), (start, _) in itertools.pairwise(regions) if start - end >= max_silence_s
    ]


def _split_at_pauses(words: list[Word], pauses: Pauses) -> list[list[Word]]:
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
    words: list[Word], speakers: _SpeakerTurns | None, pauses: Pauses
) -> Iterator[tuple[str | None, list[Word]]]:
    """A decoded segment's words in the segments they make: split at changes of speaker and at
    long pauses."""
    for speaker, run in _by_speaker(words, speakers):
        for piece in _split_at_pauses(run, pauses):
            yield speaker, piece


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


class _NBest:
    """Alternatives for a segment: its audio decoded again by beam search, keeping several
    hypotheses (see the module docstring, step 8)."""

    def __init__(
        self, whisper: Any, language: str, options: TranscribeOptions, speech: list[tuple[float, float]]
    ) -> None:
        from faster_whisper.tokenizer import Tokenizer  # type: ignore[import-untyped]
        from faster_whisper.transcribe import get_suppressed_tokens  # type: ignore[import-untyped]

        self._whisper = whisper  # faster_whisper.WhisperModel; .model is CTranslate2's Whisper
        tokenizer = Tokenizer(
            whisper.hf_tokenizer, whisper.model.is_multilingual, task="transcribe", language=language
        )
        self._tokenizer = tokenizer
        hotwords = " ".join(options.hints) or None  # the same bias as the first reading
        self._prompt = whisper.get_prompt(tokenizer, [], without_timestamps=True, hotwords=hotwords)
        self._suppress = get_suppressed_tokens(tokenizer, [-1])
        self._wanted = options.alternatives - 1
        self._beam = max(_NBEST_BEAM, 2 * options.alternatives)
        self._speech = _merged(speech)

    def add_alternatives(self, segment: Segment, audio: Audio) -> Segment:
        if not segment.text.strip():
            return segment
        hypotheses = self._decode(audio, *self._span(segment))
        best = max((score for _, score in hypotheses), default=0.0)
        seen = {_reading(segment.text)}
        alternatives: list[Alternative] = []
        for text, score in sorted(hypotheses, key=lambda h: -h[1]):
            reading = _reading(text)
            if not reading or reading in seen:
                continue
            seen.add(reading)
            confidence = max(_MIN_CONFIDENCE, segment.confidence * math.exp(score - best))
            alternatives.append(Alternative(text=text, confidence=confidence))
            if len(alternatives) == self._wanted:
                break
        return segment.model_copy(update={"alternatives": tuple(alternatives)})

    def _span(self, segment: Segment) -> tuple[float, float]:
        """The segment's words with ``_NBEST_PAD_S`` around them, except where speech runs on
        through the padding: that speech is a neighbouring segment's, and would be read too."""
        start, end = segment.start - _NBEST_PAD_S, segment.end + _NBEST_PAD_S
        if any(s <= start and e >= segment.start for s, e in self._speech):
            start = segment.start
        if any(s <= segment.end and e >= end for s, e in self._speech):
            end = segment.end
        return start, end

    def _decode(self, audio: Audio, start: float, end: float) -> list[tuple[str, float]]:
        from faster_whisper.audio import pad_or_trim  # type: ignore[import-untyped]

        span = audio[max(0, round(start * SAMPLE_RATE)) : max(0, round(end * SAMPLE_RATE))]
        # A full 30 s window, as Whisper was trained: on shorter encoder inputs it repeats itself.
        features = pad_or_trim(self._whisper.feature_extractor(span))
        encoded = self._whisper.encode(features)
        (result,) = self._whisper.model.generate(
            encoded,
            [self._prompt],
            beam_size=self._beam,
            num_hypotheses=self._beam,
            return_scores=True,
            max_length=self._whisper.max_length,
            suppress_blank=True,
            suppress_tokens=self._suppress,
        )
        return [
            (self._tokenizer.decode(ids).strip(), float(score))
            for ids, score in zip(result.sequences_ids, result.scores, strict=True)
        ]


def _merged(speech: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Speech regions with the cuts of ``merge_chunks`` (regions meeting end to start) joined."""
    regions: list[tuple[float, float]] = []
    for start, end in sorted(speech):
        if regions and start - regions[-1][1] < 0.05:
            regions[-1] = (regions[-1][0], max(end, regions[-1][1]))
        else:
            regions.append((start, end))
    return regions


def _reading(text: str) -> str:
    """What a text says, for telling alternatives apart: case and punctuation ignored."""
    return " ".join(re.sub(r"[^\w\s']", " ", text.casefold()).split())


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
