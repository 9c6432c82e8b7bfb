"""The HTTP API: one FastAPI app, one router per dialect, errors rendered by each dialect."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from functions.api import (
    console,
    console_api,
    harf,
    kashf,
    limits,
    openai_api,
    poll_cache,
    trd_batch,
    trd_v3,
    watson,
    webhooks,
)
from functions.common.bootstrap import Deps, bootstrap
from functions.common.errors import ApiError, DomainError, Invalid, Missing, WrongState
from functions.common.settings import Settings
from functions.common.validation import validation_message

log = logging.getLogger("shenava.api")

ErrorRenderer = Callable[[int, str], JSONResponse]
DIALECT_ERRORS: list[tuple[str, ErrorRenderer]] = [
    # OpenAI's paths before Watson's /v1, which they share: the first matching prefix renders
    *((prefix, openai_api.render_error) for prefix in openai_api.PREFIXES),
    (watson.PREFIX, watson.render_error),
    (trd_v3.PREFIX, trd_v3.render_error),
    (trd_batch.PREFIX, trd_v3.render_error),
    (harf.PREFIX, harf.render_error),
    *((prefix, kashf.render_error) for prefix in kashf.PREFIXES),
]


# Domain errors → status codes, once for every dialect (each renders its own body).
DOMAIN_STATUS: list[tuple[type[DomainError], int]] = [(Missing, 404), (Invalid, 400), (WrongState, 409)]

# A dialect whose document uses other codes for some kinds of error says so once, here (the first
# prefix that matches): TRD has no 409 and answers request validation with 422.
DIALECT_STATUS: list[tuple[str, trd_v3.StatusFor]] = [
    (trd_v3.SYNC_PATH, trd_v3.SYNC_STATUS),
    (trd_v3.PREFIX, trd_v3.JOB_STATUS),
    (trd_batch.PREFIX, trd_v3.JOB_STATUS),
]


def domain_status(exc: DomainError) -> int:
    return next((status for kind, status in DOMAIN_STATUS if isinstance(exc, kind)), 400)


def dialect_status(request: Request, exc: Exception, status: int) -> int:
    for prefix, overrides in DIALECT_STATUS:
        if request.url.path.startswith(prefix):
            return next((code for kind, code in overrides if isinstance(exc, kind)), status)
    return status


def plain_error(status: int, message: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": message, "code": status})


def render_error(request: Request, status: int, message: str, exc: Exception | None = None) -> JSONResponse:
    status = dialect_status(request, exc, status) if exc is not None else status
    for prefix, renderer in DIALECT_ERRORS:
        if request.url.path.startswith(prefix):
            return renderer(status, message)
    return plain_error(status, message)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "shenava_http_requests_total",
            "HTTP requests",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "shenava_http_request_seconds", "HTTP request latency", ["route"], registry=self.registry
        )


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return render_error(request, exc.status, exc.message, exc)

    @app.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError) -> JSONResponse:
        return render_error(request, domain_status(exc), str(exc), exc)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return render_error(request, 400, validation_message(exc), exc)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return render_error(request, exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return render_error(request, 500, "internal error; the request was not completed")


# The dialects, Shenava's own APIs and the console; OpenAI's /v1/audio before Watson's /v1.
ROUTERS = (
    openai_api.router, watson.router, trd_v3.router, trd_batch.router, harf.router, kashf.router,
    console_api.router, webhooks.router, console.router,
)  # fmt: skip


def install_observability(app: FastAPI, metrics: Metrics) -> None:
    """``/healthz``, ``/metrics`` and the request counters and latencies behind them."""

    @app.middleware("http")
    async def measure(request: Request, call_next: Callable[[Request], Any]) -> Response:
        started = time.perf_counter()
        response: Response = await call_next(request)
        route = getattr(request.scope.get("route"), "path", "unmatched")
        metrics.requests.labels(request.method, route, str(response.status_code)).inc()
        metrics.latency.labels(route).observe(time.perf_counter() - started)
        return response

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics", include_in_schema=False)
    async def metrics_endpoint() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)


def create_app(
    settings: Settings, monotonic: Callable[[], float] = time.monotonic, **overrides: Any
) -> FastAPI:
    """The app; keyword overrides replace ``Deps`` fields (tests pass in-memory stores);
    ``monotonic`` is the clock of the process's caches (``poll_cache``)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            deps: Deps = await stack.enter_async_context(bootstrap(settings, **overrides))
            poll_cache.install(app, deps, stack, monotonic)
            app.state.deps = deps
            yield

    app = FastAPI(
        title="Shenava",
        version="0.1.0",
        lifespan=lifespan,
        description="Speech-to-text and concept tagging, speaking the Watson, CPqD TRD, Harf "
        "and Kashf dialects.",
    )
    install_error_handlers(app)
    limits.install(app, settings, render_error)
    for router in ROUTERS:
        app.include_router(router)
    install_observability(app, Metrics())
    return app
