"""The real embedded stack for integration tests: nats-server, SeaweedFS and the bridge.

One stack per test session on free loopback ports in a temporary data dir. ``stack_settings``
is what most tests want (endpoints and credentials filled in); ``embedded_stack`` gives the
stack itself, for tests that stop and start it; ``pipeline`` runs the functions and the API on it
(one per session: the transcribe worker loads the model once).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from functions.common.settings import Settings
from infra.bridge import BridgeServer
from infra.stack import EmbeddedStack, free_port_settings
from tests.integration.pipeline import Pipeline, free_port, start_pipeline


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


@pytest.fixture(scope="session")
async def pipeline(
    stack_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Pipeline]:
    settings = stack_settings.model_copy(
        update={
            "api_port": free_port(),
            "outbound_allowlist": "127.0.0.0/8",
            "ack_wait_s": 6.0,
            "retry_backoff_s": [0.5, 1.0, 2.0],
            "notify_backoff_s": [0.5, 1.0, 1.0, 2.0, 2.0, 4.0, 4.0, 8.0],
            "callback_challenge_timeout_s": 3.0,
        }
    )
    started, close = await start_pipeline(settings, tmp_path_factory.mktemp("logs"))
    yield started
    await close()
