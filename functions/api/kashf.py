"""Kashf (concept learning and tagging): the ``/api/…`` endpoints of its document, and ``/dataset_info/``.

The dialect owns its paths (``kashf_datasets``, ``kashf_reports``, ``kashf_tagging``,
``kashf_files``), its request bodies (``kashf_requests``), its answers (``kashf_render``) and its
error body; the work is ``KashfService``'s (datasets, tags, reports, listings) and ``KashfRuns``'s
(what the train function does). Like Harf (the same vendor, Django REST framework), errors are
``{"detail": "…"}``; auth is ``Authorization: Token KEY`` and datasets belong to the caller's
tenant. Listings are 50 per page (``?page=N``) with ``count``, ``next``, ``previous`` and
``results``.

Beyond the document, and needed by it: ``POST /api/create_dataset/`` (title, slug, type text /
image / face), ``GET /api/dataset_operations/<slug>/<id>/`` (an export's or import's state, line
errors and, for an export, ``file_url``), the export's CSV at ``…/<id>/file/``, and a dataset
image at ``GET /api/dataset_media/<slug>/<item id>/``.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from functions.api import kashf_datasets, kashf_files, kashf_reports, kashf_tagging

PREFIXES = ("/api/", "/dataset_info/")

router = APIRouter()
for part in (kashf_datasets, kashf_reports, kashf_tagging, kashf_files):
    router.include_router(part.router)


def render_error(status: int, message: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"detail": message})
