"""Admission control: a per-tenant request rate (429) and the transcription queue's depth (503).

The rate window lives in the API process: it protects that process and is lost with it, which
is what a limit of this kind needs (a tenant spreading requests over N processes gets N times
the rate; put the limit in the load balancer when that matters). The queue depth is read from
the transcribe consumer on the bus, so every API process sees the same queue.
"""

from __future__ import annotations

import time
from collections import defaultdict, deque

from fastapi import Request

from functions.common.errors import ApiError

WINDOW_S = 60.0


class TooManyRequests(ApiError):
    status = 429


class RateLimiter:
    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._seen: dict[str, deque[float]] = defaultdict(deque)

    def check(self, tenant: str, now: float | None = None) -> None:
        if self.per_minute <= 0:
            return
        now = time.monotonic() if now is None else now
        seen = self._seen[tenant]
        while seen and seen[0] <= now - WINDOW_S:
            seen.popleft()
        if len(seen) >= self.per_minute:
            raise TooManyRequests(f"more than {self.per_minute} requests in a minute; slow down")
        seen.append(now)


def rate_limiter(request: Request) -> RateLimiter:
    app_state = request.app.state
    if getattr(app_state, "rate_limiter", None) is None:
        app_state.rate_limiter = RateLimiter(app_state.deps.settings.rate_limit_per_minute)
    limiter: RateLimiter = app_state.rate_limiter
    return limiter
