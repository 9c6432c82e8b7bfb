"""Operator commands on the state bucket.

``python -m functions.common.maintenance rebuild-index --tenant acme`` recreates a tenant's job
index from its job documents (after a restore, or for jobs written before the index existed).
"""

from __future__ import annotations

import argparse
import asyncio

from functions.common.bootstrap import bootstrap
from functions.common.settings import load_settings


async def rebuild_index(tenant: str) -> int:
    async with bootstrap(load_settings()) as deps:
        return await deps.jobs.rebuild_index(tenant)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m functions.common.maintenance")
    sub = parser.add_subparsers(dest="command", required=True)
    rebuild = sub.add_parser("rebuild-index", help="recreate a tenant's job index from its job documents")
    rebuild.add_argument("--tenant", required=True)
    args = parser.parse_args()
    print(f"indexed {asyncio.run(rebuild_index(args.tenant))} jobs of {args.tenant}")


if __name__ == "__main__":
    main()
