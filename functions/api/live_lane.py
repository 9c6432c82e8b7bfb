"""The API's side of the live lane (``functions.common.live``): one utterance to a live worker,
its segments back; None when no live worker answers, so the caller takes the file path."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from functions.common.bus import Bus
from functions.common.live import LIVE_SUBJECT, LiveReply, LiveRequest, encode_request

REPLY_TIMEOUT_S = 30.0  # an utterance queued behind other streams' still answers well within this


async def read_live(
    bus: Bus, request: LiveRequest, audio: npt.NDArray[np.float32], timeout_s: float = REPLY_TIMEOUT_S
) -> LiveReply | None:
    raw = await bus.request(LIVE_SUBJECT, encode_request(request, audio), timeout_s)
    return LiveReply.model_validate_json(raw) if raw else None  # none, or empty: the lane could not
