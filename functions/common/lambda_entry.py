"""AWS Lambda entrypoints: what every ``functions/<name>/lambda_function.py`` shares.

A Lambda container handles one invocation at a time and is frozen between them. Its first
invocation builds everything once — the event loop, the settings (the Fernet key read from SSM
Parameter Store), ``bootstrap``'s ``Deps``, the SNS and SQS clients, the transcribe engine — and
warm invocations reuse them, as a NATS worker process does. Nothing is built at import time, so
importing an entry module is cheap and side-effect free.

- ``SqsFunction(spec)``: the handler of a queue-triggered function (ingest, transcribe, notify),
  an ``events.aws.SqsBatchRunner`` answering ``{"batchItemFailures": [...]}``.
- ``ApiFunction(create_app)``: API Gateway (HTTP API) events → the ASGI app through Mangum; the
  app's lifespan runs once per container, and the seed API key from Secrets Manager is
  registered then.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from contextlib import AsyncExitStack
from typing import Any, Protocol, TypeVar

from aiobotocore.session import get_session
from mangum import Mangum

from events.aws import SnsPublisher, SqsBatchRunner, SqsRedeliveryDelay
from events.models import utcnow
from events.runner import FunctionSpec
from functions.common.apikeys import key_hash
from functions.common.bootstrap import bootstrap
from functions.common.logs import configure_logging
from functions.common.settings import Settings
from functions.common.state_store import AlreadyExists, StateStore

T = TypeVar("T")
LambdaEvent = dict[str, Any]
Prepare = Callable[[Settings], dict[str, Any]]
SpecSource = FunctionSpec | Callable[[Settings], FunctionSpec]


class LambdaContext(Protocol):
    def get_remaining_time_in_millis(self) -> int: ...


def aws_client_args(settings: Settings) -> dict[str, Any]:
    """Arguments for the SNS, SQS, SSM and Secrets Manager clients. On Lambda every field is
    empty and the function's role signs; an emulator (LocalStack, moto) gets the S3 credentials."""
    return {
        "endpoint_url": settings.aws_endpoint_url or None,
        "region_name": settings.s3_region,
        "aws_access_key_id": settings.s3_access_key or None,
        "aws_secret_access_key": settings.s3_secret_key or None,
    }


async def load_lambda_settings(stack: AsyncExitStack) -> Settings:
    """Settings from the environment, with ``secret_key`` read from SSM when a parameter is named.

    ``Settings`` refuses production without a secret key, and here the key arrives after the
    environment is read: the parameter's name comes from a development view of the same
    environment first.
    """
    names = Settings(environment="development")
    if not names.secret_key_parameter:
        return Settings()
    ssm = await stack.enter_async_context(get_session().create_client("ssm", **aws_client_args(names)))
    found = await ssm.get_parameter(Name=names.secret_key_parameter, WithDecryption=True)
    return Settings(secret_key=found["Parameter"]["Value"])


class LambdaRuntime:
    """One container's event loop and long-lived resources, made on first use."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.loop = asyncio.new_event_loop()
        self.stack = AsyncExitStack()
        self._settings = settings

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        # Mangum and aiobotocore find the loop as the thread's current one.
        asyncio.set_event_loop(self.loop)
        return self.loop.run_until_complete(work)

    async def settings(self) -> Settings:
        if self._settings is None:
            self._settings = await load_lambda_settings(self.stack)
            configure_logging(self._settings.log_level)
        return self._settings

    async def client(self, service: str) -> Any:
        session = get_session()
        args = aws_client_args(await self.settings())
        return await self.stack.enter_async_context(session.create_client(service, **args))

    def close(self) -> None:
        """Release the clients and the loop (Lambda never calls this; tests do)."""
        self.run(self.stack.aclose())
        self.loop.close()


class SqsFunction:
    """The Lambda handler of a function fed by its SQS queue."""

    def __init__(
        self,
        spec: SpecSource,
        prepare: Prepare | None = None,
        settings: Settings | None = None,
        **overrides: Any,
    ) -> None:
        self.runtime = LambdaRuntime(settings)
        self._spec = spec
        self._prepare = prepare
        self._overrides = overrides  # Deps fields, for tests
        self._runner: SqsBatchRunner | None = None

    def __call__(self, event: LambdaEvent, context: LambdaContext | None) -> dict[str, Any]:
        return self.runtime.run(self.invoke(event, context))

    async def invoke(self, event: LambdaEvent, context: LambdaContext | None) -> dict[str, Any]:
        runner = self._runner or await self._start()
        self._runner = runner
        seconds_left = (lambda: context.get_remaining_time_in_millis() / 1000) if context else None
        return await runner.process(event, seconds_left)

    async def _start(self) -> SqsBatchRunner:
        settings = await self.runtime.settings()
        overrides = {**(self._prepare(settings) if self._prepare else {}), **self._overrides}
        deps = await self.runtime.stack.enter_async_context(bootstrap(settings, **overrides))
        spec = self._spec if isinstance(self._spec, FunctionSpec) else self._spec(settings)
        publisher = SnsPublisher(await self.runtime.client("sns"), settings.events_topic_arn)
        return SqsBatchRunner(spec, deps, publisher, SqsRedeliveryDelay(await self.runtime.client("sqs")))


AppFactory = Callable[..., Any]  # create_app(settings, **overrides) -> an ASGI app with a lifespan


class ApiFunction:
    """The Lambda handler of the HTTP API: the same ASGI app the uvicorn server runs."""

    def __init__(self, create_app: AppFactory, settings: Settings | None = None, **overrides: Any) -> None:
        self.runtime = LambdaRuntime(settings)
        self._create_app = create_app
        self._overrides = overrides
        self._adapter: Mangum | None = None

    def __call__(self, event: LambdaEvent, context: Any) -> dict[str, Any]:
        if self._adapter is None:
            self._adapter = self.runtime.run(self._start(event))
        asyncio.set_event_loop(self.runtime.loop)
        return self._adapter(event, context)

    async def _start(self, event: LambdaEvent) -> Mangum:
        settings = await self.runtime.settings()
        if not settings.public_url:
            settings = settings.model_copy(update={"public_url": public_url_of(event)})
        app = self._create_app(settings, **self._overrides)
        # The lifespan (bootstrap) runs once per container, not once per request.
        await self.runtime.stack.enter_async_context(app.router.lifespan_context(app))
        if settings.api_key_seed_secret:
            secrets = await self.runtime.client("secretsmanager")
            found = await secrets.get_secret_value(SecretId=settings.api_key_seed_secret)
            await register_seed_key(app.state.deps.state, found["SecretString"], settings.api_key_seed_tenant)
        return Mangum(app, lifespan="off")


def public_url_of(event: LambdaEvent) -> str:
    """The API's base URL as the client called it (API Gateway's domain and stage)."""
    request = event.get("requestContext") or {}
    domain, stage = request.get("domainName", ""), request.get("stage", "$default")
    if not domain:
        return ""
    return f"https://{domain}" + ("" if stage in ("", "$default") else f"/{stage}")


async def register_seed_key(store: StateStore, key: str, tenant: str) -> bool:
    """Make ``key`` an API key of ``tenant`` (stored as its hash, like every key); True if new."""
    doc = {"tenant": tenant, "scopes": ["*"], "name": "seed (Secrets Manager)"}
    doc["created_at"] = utcnow().isoformat()
    try:
        await store.create(f"keys/{key_hash(key.strip())}.json", doc)
    except AlreadyExists:
        return False
    return True
