from typing import Any

from functions.common.settings import Settings
from functions.common.worker import main
from functions.transcribe.handler import SPEC


def load_engine(settings: Settings) -> dict[str, Any]:
    from functions.transcribe.engine import WhisperEngine

    return {"engine": WhisperEngine(settings)}


main(SPEC, prepare=load_engine)
