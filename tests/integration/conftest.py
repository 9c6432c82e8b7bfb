"""The real embedded stack for integration tests: nats-server, SeaweedFS and the bridge.

One stack per test session on free loopback ports in a temporary data dir. ``stack_settings``
is what most tests want (endpoints and credentials filled in); ``embedded_stack`` gives the
stack itself, for tests that stop and start it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from events.bridge import BridgeServer
from functions.common.settings import Settings
from infra.stack import EmbeddedStack, free_port_settings


@pytest.fixture(scope="session")
async def embedded_stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[EmbeddedStack]:
    stack = EmbeddedStack(free_port_settings(tmp_path_factory.mktemp("stack")))
    settings = await stack.start()
    bridge = BridgeServer(settings, stack.secrets.bridge_token)
    try:
        await bridge.start()
        yield stack
    finally:
        await bridge.stop()
        await stack.stop()


@pytest.fixture(scope="session")
def stack_settings(embedded_stack: EmbeddedStack) -> Settings:
    return embedded_stack.settings
