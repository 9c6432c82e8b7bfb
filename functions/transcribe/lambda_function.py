"""AWS Lambda entry of transcribe: the engine is loaded once per container, on its first event."""

from typing import Any

from functions.common.lambda_entry import SqsFunction
from functions.common.settings import Settings
from functions.transcribe.handler import SPEC


def load_engine(settings: Settings) -> dict[str, Any]:
    from functions.transcribe.engine import WhisperEngine

    return {"engine": WhisperEngine(settings)}


handler = SqsFunction(SPEC, prepare=load_engine)
