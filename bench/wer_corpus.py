"""The audio ``bench.wer`` measures on, built once into a cache (nothing large in git).

- **Real human speech** (Asterisk's prompts as Debian packages them, 8 kHz telephone
  recordings, CC-BY-SA-3.0; see ``tests.speech.debian_prompts``) in English, Spanish, French,
  Italian and Russian: ``SHORT_PER_LANGUAGE`` single prompts each, as shipped (held out: the odd
  ones of the prompts with at least five words), and long files of at least five minutes, the
  even prompts joined with pauses of 0.5-2.2 s — the shape of a call or a read-out IVR menu.
- **espeak-ng** Brazilian Portuguese (the sentences that made batched decoding loop or come
  back empty) and Persian (including a short WAV that came back empty through Harf).
"""

from __future__ import annotations

import wave
from dataclasses import dataclass
from pathlib import Path

from tests.speech import Prompt, concatenate, debian_prompts, espeak_wav, speech_cache

SHORT_PER_LANGUAGE = 24
LONG_S = {"en": 400.0, "es": 300.0, "fr": 300.0}
PAUSES_S = (0.6, 1.1, 0.8, 1.6, 0.5, 2.2, 0.9)
HUMAN = ("en", "es", "fr", "it", "ru")

PORTUGUESE = (
    "A minha filha nasceu hoje de manhã no hospital da cidade.",
    "Bom dia, eu gostaria de falar com o setor de cobrança, por favor.",
    "Obrigado por ligar.",
    "O pagamento da fatura vence na próxima segunda-feira.",
    "Meu número de protocolo é um dois três quatro cinco.",
    "Eu quero cancelar a minha assinatura de internet.",
    "A ligação caiu duas vezes enquanto eu falava com o atendente.",
    "Sim, sim, pode confirmar o endereço de entrega.",
)
PERSIAN = (
    "سلام، حال شما چطور است؟",
    "امروز هوا آفتابی است و من به پارک می‌روم.",
    "لطفاً شماره حساب خود را وارد کنید.",
    "جلسه فردا ساعت ده صبح برگزار می‌شود.",
    "من دیروز یک کتاب جدید خریدم.",
    "قیمت بلیط قطار تهران به مشهد افزایش یافته است.",
)


@dataclass(frozen=True)
class Item:
    """One audio file and what is said in it, sentence by sentence."""

    name: str
    group: str  # a language, or "long"
    language: str
    wav: Path
    sentences: tuple[str, ...]

    @property
    def reference(self) -> str:
        return " ".join(self.sentences)

    @property
    def seconds(self) -> float:
        with wave.open(str(self.wav)) as w:
            return w.getnframes() / w.getframerate()


def corpus(groups: set[str] | None = None, short: int = SHORT_PER_LANGUAGE) -> list[Item]:
    """Every item of the wanted groups (all when None), built on first use; ``short`` single
    prompts per human language (0: every held-out one, about 100 each)."""
    out: list[Item] = []
    for language in HUMAN:
        if groups is None or language in groups:
            out += _short_prompts(language, short)
    if groups is None or "pt" in groups:
        out += _espeak("pt", "pt-br", PORTUGUESE)
    if groups is None or "fa" in groups:
        out += _espeak("fa", "fa", PERSIAN)
    if groups is None or "long" in groups:
        out += [long_file(language, seconds) for language, seconds in LONG_S.items()]
    return out


def _eligible(language: str) -> list[Prompt]:
    return debian_prompts(language, min_words=5)


def _short_prompts(language: str, count: int) -> list[Item]:
    held_out = _eligible(language)[1::2]
    count = count or len(held_out)
    step = max(1, len(held_out) // count)
    return [
        Item(f"{language}/{p.name}", language, language, p.wav, (p.text,)) for p in held_out[::step][:count]
    ]


def long_file(language: str, seconds: float) -> Item:
    """At least ``seconds`` of one language's prompts (the even ones), joined with pauses."""
    chosen: list[Prompt] = []
    total = 0.0
    for prompt in _eligible(language)[::2]:
        chosen.append(prompt)
        with wave.open(str(prompt.wav)) as w:
            total += w.getnframes() / w.getframerate() + PAUSES_S[len(chosen) % len(PAUSES_S)]
        if total >= seconds:
            break
    path = _cache() / f"long-{language}-{len(chosen)}.wav"
    if not path.exists():
        pauses = [PAUSES_S[i % len(PAUSES_S)] for i in range(1, len(chosen) + 1)]
        concatenate([p.wav for p in chosen], pauses, path)
    return Item(f"long/{language}", "long", language, path, tuple(p.text for p in chosen))


def _espeak(group: str, voice: str, sentences: tuple[str, ...]) -> list[Item]:
    items = []
    for n, sentence in enumerate(sentences):
        path = _cache() / f"espeak-{voice}-{n}.wav"
        if not path.exists():
            espeak_wav(sentence, voice, path)
        items.append(Item(f"{group}/{n}", group, group, path, (sentence,)))
    return items


def _cache() -> Path:
    path = speech_cache() / "bench-wer"
    path.mkdir(parents=True, exist_ok=True)
    return path
