"""Offline diarization (``functions.transcribe.diarization``): DER on a real two-speaker recording,
espeak-ng voices taking turns, one voice, silence, and the engine's use of it.

The ``asr`` tests load the engine (its VAD gives the speech regions, as in production) and
resemblyzer's voice encoder. Measured here, at TRD's default threshold: DER 0.163 on
pyannote-audio's ``sample.wav`` (no collar, overlapped speech scored; 0.499 if all speech is one
speaker), so ``MAX_DER`` = 0.20 leaves room for other CPUs' rounding but not for a broken
clustering. The tests without a mark check the clustering on synthetic embeddings.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from bench.diarization import der, pyannote_sample
from functions.common.asr import TranscribeOptions
from functions.common.settings import Settings
from functions.common.transcript import Segment
from functions.transcribe import diarization
from functions.transcribe.audio import SAMPLE_RATE, load_wav_channel
from functions.transcribe.diarization import SpeakerTurn, cluster, diarize, distance_threshold
from functions.transcribe.engine import WhisperEngine
from functions.transcribe.vad import TIGHT_PAD_S, speech_regions
from tests.speech import espeak_wav, silence_wav

MAX_DER = 0.20
DEFAULT = -0.4  # TRD's default threshold
VOICE_A, VOICE_B = "en-us", "en-us+f3"  # resemblyzer tells these apart; en-us and en-gb it does not
TEXT_A1 = (
    "Thank you for calling the help desk. My name is Daniel and I will be helping you today. "
    "Could you tell me your account number please?"
)
TEXT_B = (
    "Hello, my internet connection has been very slow since yesterday evening. "
    "I already restarted the router twice and nothing changed at all."
)
TEXT_A2 = "I am sorry to hear that. Let me run a quick test on your line and I will call you back."
GAP_S = 0.6


@pytest.fixture(scope="module")
def engine() -> WhisperEngine:
    return WhisperEngine(Settings(asr_model="", asr_align_model="", asr_diarize_model=""))


@pytest.fixture(scope="module")
def dialogue(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[float, float, str]]]:
    """Voice A, voice B, voice A, with pauses: the file and each part's (start, end, voice)."""
    folder = tmp_path_factory.mktemp("dialogue")
    parts = [(TEXT_A1, VOICE_A), (TEXT_B, VOICE_B), (TEXT_A2, VOICE_A)]
    samples, spans, at = [], [], 0.0
    for index, (text, voice) in enumerate(parts):
        speech = read_samples(espeak_wav(text, voice, folder / f"{index}.wav"))
        samples += [speech, np.zeros(round(GAP_S * SAMPLE_RATE), np.int16)]
        spans.append((at, at + speech.size / SAMPLE_RATE, voice))
        at += speech.size / SAMPLE_RATE + GAP_S
    return write_wav(np.concatenate(samples), folder / "dialogue.wav"), spans


def read_samples(path: Path) -> npt.NDArray[np.int16]:
    with wave.open(str(path), "rb") as wav:
        return np.frombuffer(wav.readframes(wav.getnframes()), np.int16)


def write_wav(samples: npt.NDArray[np.int16], path: Path) -> Path:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        wav.writeframes(samples.tobytes())
    return path


def turns_of(engine: WhisperEngine, wav: Path, threshold: float = DEFAULT) -> list[SpeakerTurn]:
    audio = load_wav_channel(wav, 0)
    speech = [(r.start, r.end) for r in speech_regions(audio, pad_s=TIGHT_PAD_S)]
    return diarize(audio, speech, threshold)


def speaker_at(turns: list[SpeakerTurn], start: float, end: float) -> set[str]:
    """The speakers of the turns inside [start, end]."""
    return {t.speaker for t in turns if t.start < end and t.end > start}


def labelled_segments(engine: WhisperEngine, wav: Path, threshold: float | None = None) -> list[Segment]:
    options = TranscribeOptions(language="en", speaker_labels=True, diarization_threshold=threshold)
    return list(engine.transcribe_channel(wav, 0, options).segments())


@pytest.mark.asr
def test_der_on_pyannotes_two_speaker_sample(engine: WhisperEngine) -> None:
    wav, rttm = pyannote_sample()
    turns = turns_of(engine, wav)
    strict = der(turns, rttm, load_wav_channel(wav, 0).size / SAMPLE_RATE)["der"]
    print(f"DER on pyannote-audio sample.wav: {strict:.3f} (no collar, overlap scored)")

    assert {t.speaker for t in turns} == {"1", "2"}
    assert strict < MAX_DER


@pytest.mark.asr
def test_two_voices_taking_turns_are_two_speakers_in_order(
    engine: WhisperEngine, dialogue: tuple[Path, list[tuple[float, float, str]]]
) -> None:
    wav, spans = dialogue
    turns = turns_of(engine, wav)

    # Well inside each part (0.5 s margins): one speaker, "1" first, "2" second, "1" again.
    assert [speaker_at(turns, start + 0.5, end - 0.5) for start, end, _ in spans] == [{"1"}, {"2"}, {"1"}]


@pytest.mark.asr
def test_the_engine_labels_each_segment_with_its_speaker(
    engine: WhisperEngine, dialogue: tuple[Path, list[tuple[float, float, str]]]
) -> None:
    wav, spans = dialogue
    segments = labelled_segments(engine, wav)

    expected = {VOICE_A: "1", VOICE_B: "2"}
    for segment in segments:
        middle = (segment.start + segment.end) / 2
        voice = next(v for start, end, v in spans if start - GAP_S / 2 <= middle <= end + GAP_S / 2)
        assert segment.speaker == expected[voice], segment
    assert {s.speaker for s in segments} == {"1", "2"}


@pytest.mark.asr
def test_a_jobs_threshold_is_honoured(
    engine: WhisperEngine, dialogue: tuple[Path, list[tuple[float, float, str]]]
) -> None:
    wav, _ = dialogue
    # 0.6 on TRD's scale is a cosine distance of 1: every voice merges into one speaker.
    assert {s.speaker for s in labelled_segments(engine, wav, threshold=0.6)} == {"1"}


@pytest.mark.asr
def test_without_speaker_labels_segments_have_no_speaker(
    engine: WhisperEngine, dialogue: tuple[Path, list[tuple[float, float, str]]]
) -> None:
    wav, _ = dialogue
    segments = list(engine.transcribe_channel(wav, 0, TranscribeOptions(language="en")).segments())

    assert segments
    assert all(s.speaker is None for s in segments)


@pytest.mark.asr
def test_one_voice_is_one_speaker(engine: WhisperEngine, tmp_path: Path) -> None:
    wav = espeak_wav(" ".join([TEXT_A1, TEXT_B, TEXT_A2]), VOICE_B, tmp_path / "one.wav")
    turns = turns_of(engine, wav)

    assert turns
    assert {t.speaker for t in turns} == {"1"}


@pytest.mark.asr
def test_silence_has_no_turns(engine: WhisperEngine, tmp_path: Path) -> None:
    wav = silence_wav(5.0, tmp_path / "silence.wav")

    assert turns_of(engine, wav) == []
    # Regions the VAD might give over digital silence still name nobody.
    assert diarize(np.zeros(5 * SAMPLE_RATE, np.float32), [(0.5, 4.5)], DEFAULT) == []


# Clustering on synthetic embeddings: no model needed.


def unit_rows(
    rng: np.random.Generator, centre: npt.NDArray[np.float64], count: int
) -> npt.NDArray[np.float32]:
    """Non-negative unit vectors scattered around a centre, like resemblyzer's embeddings."""
    rows = np.abs(centre + rng.normal(0.0, 0.02, size=(count, centre.size)))
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def two_voices(rng: np.random.Generator) -> npt.NDArray[np.float32]:
    """Ten windows of one voice, then ten of another at a cosine distance of about 0.5."""
    a, b = np.zeros(256), np.zeros(256)
    a[:128], b[64:192] = 1.0, 1.0
    return np.concatenate(
        [unit_rows(rng, a / np.linalg.norm(a), 10), unit_rows(rng, b / np.linalg.norm(b), 10)]
    )


def test_clustering_separates_two_voices_at_the_default_threshold() -> None:
    labels = cluster(two_voices(np.random.default_rng(0)), distance_threshold(DEFAULT))
    assert labels[:10] == [labels[0]] * 10
    assert labels[10:] == [labels[10]] * 10
    assert labels[0] != labels[10]


def test_a_higher_threshold_merges_and_max_speakers_caps() -> None:
    embeddings = two_voices(np.random.default_rng(1))
    assert set(cluster(embeddings, distance_threshold(0.6))) == {0}
    assert len(set(cluster(embeddings, 0.0))) > 2  # every window its own cluster
    assert len(set(cluster(embeddings, 0.0, max_speakers=2))) == 2


def test_threshold_mapping_is_monotonic_and_anchored_at_trds_default() -> None:
    assert distance_threshold(DEFAULT) == pytest.approx(diarization.DEFAULT_DISTANCE)
    assert distance_threshold(-0.3) > distance_threshold(DEFAULT) > distance_threshold(-0.5)


def test_a_small_cluster_joins_the_closest_voice() -> None:
    embeddings = two_voices(np.random.default_rng(2))
    labels = [0] * 10 + [1] * 8 + [2] * 2  # windows 18-19 split off voice two
    won = {0: 10.0, 1: 8.0, 2: 1.0}
    assert diarization._absorb_small_clusters(embeddings, labels, won) == [0] * 10 + [1] * 10


def test_short_label_runs_are_smoothed_away() -> None:
    frames = round(diarization.MIN_TURN_S / diarization.STEP_S)
    labels = np.array([0] * 3 * frames + [1] * (frames - 1) + [0] * 2 * frames)
    assert diarization._smooth(labels).tolist() == [0] * labels.size


def test_no_speech_no_turns() -> None:
    assert diarize(np.zeros(SAMPLE_RATE, np.float32), [], DEFAULT) == []
    assert diarize(np.zeros(0, np.float32), [(0.0, 1.0)], DEFAULT) == []
