"""docs/architecture.md matches the tree: every event type, every HTTP route, every router module."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

import events.models as models
from functions.api.app import create_app
from functions.common.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "architecture.md").read_text()


def event_types() -> list[str]:
    return [
        name
        for name, cls in inspect.getmembers(models, inspect.isclass)
        if issubclass(cls, models.Event) and isinstance(cls.model_fields["type"].default, str)
    ]


@pytest.mark.parametrize("event", event_types())
def test_every_event_type_is_in_the_table(event: str) -> None:
    assert f"`{event}`" in DOC


def test_every_route_is_listed() -> None:
    paths = create_app(Settings()).openapi()["paths"]
    missing = [path for path in paths if f"`{path}`" not in DOC]
    assert not missing, f"add to docs/architecture.md: {missing}"


def test_every_router_module_is_named() -> None:
    routers = [
        path.stem
        for path in (ROOT / "functions" / "api").glob("*.py")
        if "APIRouter(" in path.read_text()
    ]
    missing = [name for name in routers if f"{name}.py" not in DOC]
    assert routers and not missing, f"add to docs/architecture.md: {missing}"
