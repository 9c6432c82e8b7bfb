"""One way to say what is wrong with validated input: pydantic's errors as "where: what" phrases."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

_FRAMING = {"query", "body", "path", "header", "form"}  # FastAPI's location prefixes say nothing


class HasErrors(Protocol):
    def errors(self) -> Iterable[Mapping[str, Any]]: ...


def validation_message(exc: HasErrors, prefix: str = "", limit: int = 3) -> str:
    """``"config.priority: Input should be less than or equal to 100; …"`` (up to ``limit``
    problems); ``prefix`` names the document the locations are in."""
    parts = []
    for error in list(exc.errors())[:limit]:
        where = ".".join(str(p) for p in error.get("loc", ()) if p not in _FRAMING)
        where = ".".join(p for p in (prefix, where) if p) or "request"
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(parts)
