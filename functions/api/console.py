"""The web console (``/ui``): one HTML page and its assets, shipped in ``console_assets/``.

Plain HTML, CSS and JavaScript modules: nothing is built at install time and nothing is fetched
from elsewhere at run time (the Content-Security-Policy allows this origin only). The page signs
in with an API key kept in the browser's session storage and calls the API with it; the data
comes from the console's JSON (``console_api``) and the dialects' own endpoints.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse

from functions.common.errors import NotFound

ASSETS = Path(__file__).with_name("console_assets")
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
        "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
        "frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",  # revalidated (ETag): a new release is seen at once
}

router = APIRouter(prefix="/ui", include_in_schema=False)


def _shipped() -> dict[str, Path]:
    """The assets by name; only these are ever served (no path from a request reaches the disk)."""
    return {p.name: p for p in ASSETS.iterdir() if p.is_file() and p.suffix in CONTENT_TYPES}


SHIPPED = _shipped()


def _serve(name: str) -> FileResponse:
    path = SHIPPED.get(name)
    if path is None:
        raise NotFound(f"the console has no asset {name!r}")
    return FileResponse(path, media_type=CONTENT_TYPES[path.suffix], headers=SECURITY_HEADERS)


@router.get("")
async def console_root() -> RedirectResponse:
    return RedirectResponse("/ui/", status_code=307)


@router.get("/")
async def console_page() -> FileResponse:
    return _serve("index.html")


@router.get("/assets/{name}")
async def console_asset(name: str) -> FileResponse:
    return _serve(name)
