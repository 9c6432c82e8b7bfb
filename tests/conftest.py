"""Fixtures every tier shares."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.receiver import Receiver


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A real HTTP webhook receiver on loopback (tests that need a secret define their own)."""
    started = Receiver()
    await started.start()
    yield started
    await started.stop()
