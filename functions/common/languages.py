"""Language codes the Whisper models know, and the names callers give them (dialect model names,
"auto"), shared by the API's dialects and the drop folder."""

from __future__ import annotations

from functions.common.errors import BadRequest

WHISPER_LANGUAGES = frozenset(
    (
        "af", "am", "ar", "as", "az", "ba", "be", "bg", "bn", "bo", "br", "bs", "ca", "cs", "cy", "da",
        "de", "el", "en", "es", "et", "eu", "fa", "fi", "fo", "fr", "gl", "gu", "ha", "haw", "he", "hi",
        "hr", "ht", "hu", "hy", "id", "is", "it", "ja", "jw", "ka", "kk", "km", "kn", "ko", "la", "lb",
        "ln", "lo", "lt", "lv", "mg", "mi", "mk", "ml", "mn", "mr", "ms", "mt", "my", "ne", "nl", "nn",
        "no", "oc", "pa", "pl", "ps", "pt", "ro", "ru", "sa", "sd", "si", "sk", "sl", "sn", "so", "sq",
        "sr", "su", "sv", "sw", "ta", "te", "tg", "th", "tk", "tl", "tr", "tt", "uk", "ur", "uz", "vi",
        "yi", "yo", "yue", "zh",
    )
)  # fmt: skip


def language_of_model(model: str | None, language: str | None = None) -> str | None:
    """``en-US_BroadbandModel`` → ``en``; an explicit ``language`` wins; None means detect."""
    chosen = (language or "").strip().lower()
    if not chosen and model:
        chosen = model.strip().replace("_", "-").split("-", 1)[0].lower()
    if not chosen or chosen in {"auto", "multilingual"}:
        return None
    if chosen not in WHISPER_LANGUAGES:
        raise BadRequest(f"unknown language or model {language or model!r}")
    return chosen
