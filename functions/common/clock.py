"""The time, always timezone-aware UTC (``Deps.clock`` defaults to it; tests pass their own)."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)
