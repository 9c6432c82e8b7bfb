"""What the event layer reads from the configuration (``functions.common.settings.Settings``
has all of it; ``events`` never imports ``functions``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class StreamSettings(Protocol):
    @property
    def nats_url(self) -> str: ...

    @property
    def stream_name(self) -> str: ...

    @property
    def stream_max_age_days(self) -> float: ...

    @property
    def stream_replicas(self) -> int: ...

    @property
    def ack_wait_s(self) -> float: ...

    @property
    def max_deliver(self) -> int: ...

    @property
    def retry_backoff_s(self) -> Sequence[float]: ...


class HasStreamSettings(Protocol):
    """What a runner needs of the ``deps`` it hands to a handler."""

    @property
    def settings(self) -> StreamSettings: ...
