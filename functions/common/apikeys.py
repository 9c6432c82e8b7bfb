"""API keys: stored only as sha256 hashes (``keys/<hash>.json``), each mapped to one tenant.

``python -m functions.common.apikeys create --tenant acme`` prints a new key once;
``webhook-secret --tenant acme [--rotate]`` prints (or rotates) the tenant's Standard Webhooks
``whsec_`` secret, ``callback-secret`` sets the one TRD callbacks are signed with.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import re
import secrets
import sys
from dataclasses import dataclass

from functions.common.clock import utcnow
from functions.common.settings import Settings, load_settings
from functions.common.state_store import StateStore

TENANT_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


@dataclass(frozen=True)
class ApiKey:
    tenant: str
    scopes: tuple[str, ...]


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _key_doc(key: str) -> str:
    return f"keys/{key_hash(key)}.json"


async def create_key(store: StateStore, tenant: str, name: str = "") -> str:
    if not TENANT_PATTERN.match(tenant):
        raise ValueError("a tenant is 1-63 lower-case letters, digits, '-' or '_'")
    key = "shv_" + secrets.token_urlsafe(32)
    doc = {"tenant": tenant, "scopes": ["*"], "name": name, "created_at": utcnow().isoformat()}
    await store.create(_key_doc(key), doc)
    return key


async def resolve_key(store: StateStore, key: str) -> ApiKey | None:
    found = await store.get(_key_doc(key))
    if not found:
        return None
    doc = found[0]
    return ApiKey(tenant=str(doc["tenant"]), scopes=tuple(doc.get("scopes", [])))


async def ensure_dev_key(settings: Settings) -> str:
    """The development key in ``<data_dir>/dev-api-key``, created on first start."""
    from functions.common.bootstrap import bootstrap

    path = settings.data_dir / "dev-api-key"
    async with bootstrap(settings) as deps:
        if path.exists():
            key = path.read_text().strip()
            if await resolve_key(deps.state, key):
                return key
        key = await create_key(deps.state, settings.drop_tenant, name="development")
    path.write_text(key + "\n")
    path.chmod(0o600)
    return key


async def _create_from_cli(tenant: str, name: str) -> None:
    from functions.common.bootstrap import bootstrap

    async with bootstrap(load_settings()) as deps:
        print(await create_key(deps.state, tenant, name))


async def _set_callback_secret(tenant: str, secret: str) -> None:
    from functions.common.bootstrap import bootstrap
    from functions.common.callbacks import set_tenant_secret

    async with bootstrap(load_settings()) as deps:
        await set_tenant_secret(deps.state, deps.secrets, tenant, secret)
    print(f"notifications to {tenant}'s callback_urls are now signed (X-Callback-Signature)")


async def _webhook_secret(tenant: str, rotate: bool) -> None:
    from functions.common.bootstrap import bootstrap
    from functions.common.webhook_secrets import ROTATION_GRACE, WebhookSecrets

    async with bootstrap(load_settings()) as deps:
        secrets_ = WebhookSecrets(deps.state, deps.secrets)
        print(await secrets_.rotate(tenant) if rotate else await secrets_.current(tenant))
    if rotate:
        hours = ROTATION_GRACE.total_seconds() / 3600
        print(f"the previous secret signs too for {hours:g} hours", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m functions.common.apikeys")
    sub = parser.add_subparsers(dest="command", required=True)
    create = sub.add_parser("create", help="create an API key for a tenant and print it")
    create.add_argument("--tenant", required=True)
    create.add_argument("--name", default="")
    secret = sub.add_parser("callback-secret", help="sign a tenant's TRD callback_urls notifications")
    secret.add_argument("--tenant", required=True)
    secret.add_argument("--secret", required=True)
    webhook = sub.add_parser(
        "webhook-secret", help="print a tenant's Standard Webhooks secret (whsec_…), made if it has none"
    )
    webhook.add_argument("--tenant", required=True)
    webhook.add_argument("--rotate", action="store_true", help="make a new one (the old one signs for a day)")
    args = parser.parse_args()
    if args.command == "create":
        asyncio.run(_create_from_cli(args.tenant, args.name))
    elif args.command == "webhook-secret":
        asyncio.run(_webhook_secret(args.tenant, args.rotate))
    else:
        asyncio.run(_set_callback_secret(args.tenant, args.secret))


if __name__ == "__main__":
    main()
