"""The live lane's contract: the API asks the ``live`` function to read one utterance, now.

Why a lane of its own: a live utterance as a file job pays for an upload, a bucket event, ingest
(probe, normalise), a queue and the job's state writes before a worker even starts on it — about
1.3 s of a 3 s clip's 2.95 s. Instead the API sends the utterance's PCM in a NATS request to the
``live`` workers (one queue group: any idle worker answers), which keep the engine loaded, read it
at once and answer with its segments. Nothing about the utterance is written before it is read;
the stream as a whole is stored as one job (media and transcript in the buckets, ``job.completed``
on the bus) when it ends. Core NATS, not JetStream: an answer a client no longer waits for is
worth nothing, so a lost request is simply not answered (the API then falls back to the file path).

The subject is outside ``shenava.>`` on purpose: the stream captures that prefix, and audio must
not go into the audit log. A request is a JSON header line, a newline, then 16 kHz mono 16-bit
PCM; the reply is a ``LiveReply`` as JSON.
"""

from __future__ import annotations

import json

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict

from functions.common.pcm16 import float_samples, pcm16_bytes
from functions.common.transcript import Segment

LIVE_SUBJECT = "shenava-live.utterance"
LIVE_QUEUE = "live"
RATE = 16_000


class LiveRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    tenant: str
    language: str | None = None  # None = detect
    hints: tuple[str, ...] = ()
    interim: bool = False  # a hypothesis while the utterance is still spoken: read fast, never fall back


class LiveReply(BaseModel):
    model_config = ConfigDict(frozen=True)

    language: str
    segments: tuple[Segment, ...]  # times from the start of the utterance
    decode_s: float  # how long the reading took in the live worker


def encode_request(request: LiveRequest, audio: npt.NDArray[np.float32]) -> bytes:
    return request.model_dump_json().encode() + b"\n" + pcm16_bytes(audio)


def decode_request(data: bytes) -> tuple[LiveRequest, npt.NDArray[np.float32]]:
    header, _, pcm = data.partition(b"\n")
    request = LiveRequest.model_validate(json.loads(header))
    return request, float_samples(pcm)
