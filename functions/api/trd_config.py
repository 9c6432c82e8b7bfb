"""The TRD v3 job configuration: the documented defaults, and what Shenava honours.

Every field of the document is accepted with its documented default. A value Shenava cannot
honour is refused with 422 naming the field; nothing is silently ignored. Unknown fields are
refused too (a typo must not pass as a default).

Units the document leaves unsaid, as Shenava reads them:

- ``diarization.vad.chunk_max_silence`` (default 1200) is **milliseconds**: the longest pause
  kept inside one segment; a pause the VAD finds at least this long ends the segment. CPqD's own
  ASR gives its speech-detector times in integer milliseconds (``endpointer.waitEnd``, the
  silence that ends speech, defaults to 1000), and 1.2 s is the usual end-of-utterance pause.
- ``diarization.vad.chunk_max_length`` (default 3600) is **10 ms frames** (CPqD's ASR frame, so
  3600 = 36 s): the longest stretch of speech decoded as one chunk. Read as milliseconds the
  default would be 3.6 s, which would cut ordinary call-centre turns mid-word by default;
  36 s is the scale of an ASR window. Whisper's window is 30 s, so values above 3000 decode in
  chunks of 30 s (the default among them, exactly as before these settings were honoured);
  below 100 (1 s) is refused, as each chunk costs a full 30 s encoder pass.
- ``recognition.decoder.max_sentences`` (1-10) is the number of ``alternatives`` per segment.
  The first is the transcription itself, with its words; the others come from decoding the
  segment's audio again with beam search keeping several hypotheses, best first, and carry text,
  score and ``lm`` but no ``words`` (timings come only with the first reading).
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from functions.common.errors import Unprocessable
from functions.common.jobs import RecognitionOptions
from functions.common.validation import validation_message

DEFAULT_LM = "builtin:slm/callcenter-small"
SILENCE_UNIT_S = 0.001  # chunk_max_silence is in milliseconds
LENGTH_UNIT_S = 0.01  # chunk_max_length is in 10 ms frames
MAX_SENTENCES = 10  # each alternative beyond the first costs a beam search per segment


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DualTone(Strict):
    enabled: bool = False
    row_freq: list[int] = Field(default_factory=lambda: [350, 697, 770, 852, 941])
    col_freq: list[int] = Field(default_factory=lambda: [440, 1209, 1336, 1477, 1633])
    start_time: float = 0
    stop_time: float = 5
    min_duration: float = 0.012


class Vad(Strict):
    chunk_max_silence: int = Field(default=1200, gt=0)  # ms
    chunk_max_length: int = Field(default=3600, ge=100)  # 10 ms frames
    dual_tone: DualTone = Field(default_factory=DualTone)


class Clustering(Strict):
    threshold: float = -0.4
    enabled: bool = True


class Toggle(Strict):
    enabled: bool = False


class Diarization(Strict):
    vad: Vad = Field(default_factory=Vad)
    clustering: Clustering = Field(default_factory=Clustering)
    descriptor: Toggle = Field(default_factory=Toggle)


class Decoder(Strict):
    max_sentences: int = Field(default=1, ge=1, le=MAX_SENTENCES)
    word_details: int = Field(default=1, ge=0)


class Recognition(Strict):
    lm: str = DEFAULT_LM
    textify: Toggle = Field(default_factory=Toggle)
    hints_words: list[str] = Field(default_factory=list)
    decoder: Decoder = Field(default_factory=Decoder)
    tasks: list[str | dict[str, Any]] = Field(default_factory=list)
    language: str = "pt"  # Shenava's addition: CPqD's service is Portuguese-only


class TrdConfig(Strict):
    priority: int = Field(default=50, ge=0, le=100)
    normalization: dict[str, Any] = Field(default_factory=dict)
    diarization: Diarization = Field(default_factory=Diarization)
    recognition: Recognition = Field(default_factory=Recognition)


def parse_config(raw: str | None) -> TrdConfig:
    if raw is None or not raw.strip():
        return TrdConfig()
    try:
        data = json.loads(raw)
        return TrdConfig.model_validate(data)
    except json.JSONDecodeError as exc:
        raise Unprocessable(f"config is not valid JSON: {exc.msg} at position {exc.pos}") from exc
    except ValidationError as exc:
        raise Unprocessable(validation_message(exc, prefix="config", limit=1)) from exc


def _refusals(config: TrdConfig) -> list[str]:
    """Settings whose non-default values Shenava cannot honour yet, by name."""
    checks = {
        "normalization": bool(config.normalization),
        "diarization.vad.dual_tone.enabled": config.diarization.vad.dual_tone.enabled,
        "diarization.descriptor.enabled": config.diarization.descriptor.enabled,
        "recognition.lm (only the built-in model)": config.recognition.lm != DEFAULT_LM,
        "recognition.textify.enabled": config.recognition.textify.enabled,
        "recognition.decoder.word_details (0 or 1)": config.recognition.decoder.word_details > 1,
    }
    return [name for name, refused in checks.items() if refused]


def recognition_options(config: TrdConfig) -> RecognitionOptions:
    """What the engine is asked to do; 422 for any setting it cannot honour."""
    from functions.common.languages import language_of_model

    refused = _refusals(config)
    if refused:
        raise Unprocessable("Shenava cannot honour these configuration settings: " + "; ".join(refused))
    clustering = config.diarization.clustering
    vad = config.diarization.vad
    return RecognitionOptions(
        language=language_of_model(None, config.recognition.language),
        model=config.recognition.lm,
        timestamps=True,
        word_confidence=True,
        speaker_labels=clustering.enabled,
        diarization_threshold=clustering.threshold,
        hints=[h.strip() for h in config.recognition.hints_words if h.strip()],
        max_silence_s=round(vad.chunk_max_silence * SILENCE_UNIT_S, 3),
        max_chunk_s=round(vad.chunk_max_length * LENGTH_UNIT_S, 2),
        alternatives=config.recognition.decoder.max_sentences,
        tasks=task_datasets(config),
    )


def task_datasets(config: TrdConfig) -> list[str]:
    """The Kashf text datasets ``recognition.tasks`` names: ``"slug"`` or ``{"dataset": "slug"}``."""
    slugs = []
    for n, task in enumerate(config.recognition.tasks):
        slug = task if isinstance(task, str) else task.get("dataset")
        if not isinstance(slug, str) or not slug.strip():
            raise Unprocessable(
                f'config.recognition.tasks.{n}: name a Kashf text dataset ("slug" or {{"dataset": "slug"}})'
            )
        slugs.append(slug.strip())
    return list(dict.fromkeys(slugs))
