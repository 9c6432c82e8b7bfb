import os
from typing import Any

from functions.common.settings import Settings
from functions.common.worker import main
from functions.transcribe.handler import SPEC


def load_engine(settings: Settings) -> dict[str, Any]:
    from functions.transcribe.engine import WhisperEngine

    if settings.transcribe_nice > 0:
        # Files yield the CPU to live streams on the same machine (their latency is the point).
        os.nice(settings.transcribe_nice)
    return {"engine": WhisperEngine(settings)}


main(SPEC, prepare=load_engine)
