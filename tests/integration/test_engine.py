"""The real engine on espeak-ng speech: text, word timings, channels, silence, language.

Loads the bundled multilingual base model once per session (about 10-11 s on 2 CPU cores).
Word error rates measured on this espeak-ng speech with the int8 base model: ENGLISH 0.067,
LEFT 0.0, RIGHT 0.0, the repeated minute 0.022, PORTUGUESE (language given) 0.19. The limits
(``MAX_WER`` = 0.25 for English, 0.6 for Portuguese) leave room for other CPUs' rounding
without letting a broken engine through.
"""

from __future__ import annotations

import re
import wave
from collections.abc import Iterator
from pathlib import Path

import jiwer
import pytest

from functions.common.asr import TranscribeOptions
from functions.common.settings import Settings
from functions.common.transcript import Segment
from functions.transcribe.engine import WhisperEngine
from tests.speech import espeak_wav, silence_wav, stereo_wav

pytestmark = pytest.mark.asr

MAX_WER = 0.25
ENGLISH = (
    "The weather today is sunny with a light breeze. "
    "Please send the report to the finance team before noon. "
    "Our customer service line is open every day of the week."
)
LEFT = "Thank you for calling the help desk. How can I help you today?"
RIGHT = "Hello, my internet connection has been very slow since yesterday."
PORTUGUESE = "Bom dia, hoje vamos falar sobre o tempo em São Paulo e no Rio de Janeiro."


@pytest.fixture(scope="session")
def engine() -> WhisperEngine:
    # The bundled model, from the usual cache (assembled there by `make model` or on first use);
    # no optional models, so the figures below are the plain engine's.
    return WhisperEngine(Settings(asr_model="", asr_align_model="", asr_diarize_model=""))


@pytest.fixture(scope="session")
def english_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return espeak_wav(ENGLISH, "en-us", tmp_path_factory.mktemp("en") / "en.wav")


def normalise(text: str) -> str:
    text = re.sub(r"[^\w\s']", " ", text.lower())
    return " ".join(text.split())


def wer(reference: str, hypothesis: str) -> float:
    return float(jiwer.wer(normalise(reference), normalise(hypothesis)))


def transcribe(
    engine: WhisperEngine, wav: Path, channel: int = 0, language: str | None = None
) -> tuple[str, list[Segment]]:
    run = engine.transcribe_channel(wav, channel, TranscribeOptions(language=language))
    return run.language, list(run.segments())


def text_of(segments: list[Segment]) -> str:
    return " ".join(s.text for s in segments)


def all_words(segments: list[Segment]) -> Iterator[tuple[Segment, int]]:
    for segment in segments:
        for index in range(len(segment.words)):
            yield segment, index


def test_english_is_transcribed_with_language_detected(engine: WhisperEngine, english_wav: Path) -> None:
    language, segments = transcribe(engine, english_wav)

    assert language == "en"
    assert segments
    assert wer(ENGLISH, text_of(segments)) <= MAX_WER, text_of(segments)
    assert all(s.channel == 0 and s.speaker is None for s in segments)
    assert all(0 < s.confidence <= 1 for s in segments)


def test_words_have_ordered_times_inside_their_segment_and_confidences(
    engine: WhisperEngine, english_wav: Path
) -> None:
    _, segments = transcribe(engine, english_wav, language="en")

    assert sum(len(s.words) for s in segments) >= len(ENGLISH.split()) * 0.75
    previous_end = 0.0
    for segment in segments:
        assert previous_end <= segment.start <= segment.end
        assert segment.text == " ".join(w.text for w in segment.words)
        for word in segment.words:
            assert segment.start <= word.start <= word.end <= segment.end
            assert word.start >= previous_end
            assert 0 < word.confidence <= 1
            assert word.text and word.text == word.text.strip()
            previous_end = word.end


def test_each_stereo_channel_is_transcribed_on_its_own(engine: WhisperEngine, tmp_path: Path) -> None:
    left = espeak_wav(LEFT, "en-us", tmp_path / "left.wav")
    right = espeak_wav(RIGHT, "en-us", tmp_path / "right.wav", delay_s=3.0)
    both = stereo_wav(left, right, tmp_path / "both.wav")

    _, left_segments = transcribe(engine, both, channel=0)
    _, right_segments = transcribe(engine, both, channel=1)

    assert wer(LEFT, text_of(left_segments)) <= MAX_WER, text_of(left_segments)
    assert wer(RIGHT, text_of(right_segments)) <= MAX_WER, text_of(right_segments)
    assert wer(RIGHT, text_of(left_segments)) > 0.7  # nothing of the other side leaks in
    assert all(s.channel == 1 for s in right_segments)
    # Times are absolute in the file: the right side starts speaking after 3 s of silence.
    assert right_segments[0].start >= 2.5
    assert left_segments[0].start < 1.0


def test_repetitive_minute_is_not_looped_past_the_audio(engine: WhisperEngine, tmp_path: Path) -> None:
    # Repeated sentences once made a timestamp-free decoder repeat them beyond the audio.
    reference = " ".join([ENGLISH] * 6)
    wav = espeak_wav(reference, "en-us", tmp_path / "long.wav")
    with wave.open(str(wav)) as w:
        duration = w.getnframes() / w.getframerate()

    _, segments = transcribe(engine, wav, language="en")

    assert wer(reference, text_of(segments)) <= MAX_WER, text_of(segments)
    assert segments[-1].end <= duration + 0.5
    assert all(s.end - s.start >= 0.1 * len(s.words) for s in segments)


def test_silence_gives_no_segments(engine: WhisperEngine, tmp_path: Path) -> None:
    wav = silence_wav(8.0, tmp_path / "silence.wav")

    _, segments = transcribe(engine, wav)

    assert segments == []


def test_portuguese_with_language_given(engine: WhisperEngine, tmp_path: Path) -> None:
    wav = espeak_wav(PORTUGUESE, "pt-br", tmp_path / "pt.wav")

    language, segments = transcribe(engine, wav, language="pt")

    assert language == "pt"
    text = text_of(segments)
    assert len(normalise(text).split()) >= 5, text
    # The base model hears synthetic Portuguese imperfectly, but it is recognisably this text.
    assert wer(PORTUGUESE, text) <= 0.6, text


def test_words_can_be_left_out(engine: WhisperEngine, english_wav: Path) -> None:
    options = TranscribeOptions(language="en", word_timestamps=False)

    segments = list(engine.transcribe_channel(english_wav, 0, options).segments())

    assert segments
    assert all(s.words == () for s in segments)


def test_a_missing_channel_is_refused(engine: WhisperEngine, english_wav: Path) -> None:
    with pytest.raises(ValueError, match="no channel 1"):
        engine.transcribe_channel(english_wav, 1, TranscribeOptions())


def test_an_alignment_model_retimes_words_offline(
    engine: WhisperEngine, english_wav: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The optional wav2vec2 path, with a tiny random model made here (no model can be fetched).

    The timings it gives are meaningless; what is checked is that the path runs offline and
    keeps the words' text, confidences and order.
    """
    import nltk  # type: ignore[import-untyped]

    from functions.transcribe.alignment import Aligner

    monkeypatch.setattr(nltk.data, "path", [str(empty_punkt(tmp_path / "nltk")), *nltk.data.path])
    _, plain = transcribe(engine, english_wav, language="en")
    # The session engine with this aligner plugged in, as asr_align_model would build it.
    monkeypatch.setattr(engine, "_aligner", Aligner(str(tiny_wav2vec2(tmp_path / "w2v")), "cpu"))

    _, aligned = transcribe(engine, english_wav, language="en")

    assert [s.text for s in aligned] == [s.text for s in plain]
    plain_words = [w for s in plain for w in s.words]
    aligned_words = [w for s in aligned for w in s.words]
    assert [(w.text, w.confidence) for w in aligned_words] == [(w.text, w.confidence) for w in plain_words]
    assert [w.start for w in aligned_words] != [w.start for w in plain_words]  # re-timed
    for segment in aligned:
        starts = [w.start for w in segment.words]
        assert starts == sorted(starts)
        assert all(segment.start <= w.start <= w.end <= segment.end for w in segment.words)


def empty_punkt(root: Path) -> Path:
    """NLTK punkt_tab data for English with no learned parameters (enough to split sentences)."""
    english = root / "tokenizers" / "punkt_tab" / "english"
    english.mkdir(parents=True)
    for name in ("collocations.tab", "sent_starters.txt", "abbrev_types.txt", "ortho_context.tab"):
        (english / name).touch()
    return root


def tiny_wav2vec2(path: Path) -> Path:
    """A randomly initialised character-level wav2vec2 CTC model and processor, saved locally."""
    import json
    import string

    from transformers import (  # type: ignore[import-untyped]
        Wav2Vec2Config,
        Wav2Vec2CTCTokenizer,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2ForCTC,
        Wav2Vec2Processor,
    )

    path.mkdir(parents=True)
    letters = string.ascii_lowercase + "'"
    vocab = {"<pad>": 0, "|": 1, "<unk>": 2, **{c: i + 3 for i, c in enumerate(letters)}}
    (path / "vocab.json").write_text(json.dumps(vocab))
    tokenizer = Wav2Vec2CTCTokenizer(str(path / "vocab.json"), word_delimiter_token="|")
    features = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0)
    Wav2Vec2Processor(feature_extractor=features, tokenizer=tokenizer).save_pretrained(path)
    config = Wav2Vec2Config(
        vocab_size=len(vocab),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=16,
        conv_dim=(8,) * 7,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
    )
    Wav2Vec2ForCTC(config).save_pretrained(path)
    return path


def test_hints_bias_the_decoder_towards_their_words(engine: WhisperEngine, tmp_path: Path) -> None:
    """TRD's hints_words: names the model cannot know come out as given."""
    wav = espeak_wav("Please call Kwazulu Brentwick about the account tomorrow.", "en-us", tmp_path / "n.wav")
    plain = text_of(list(engine.transcribe_channel(wav, 0, TranscribeOptions(language="en")).segments()))
    hinted_options = TranscribeOptions(language="en", hints=("Kwazulu", "Brentwick"))
    hinted = text_of(list(engine.transcribe_channel(wav, 0, hinted_options).segments()))
    assert "Kwazulu Brentwick" in hinted, hinted
    assert "Kwazulu Brentwick" not in plain, plain  # else the hint proves nothing
