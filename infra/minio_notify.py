"""Point a MinIO bucket's object-created notifications at Shenava's NATS stream.

MinIO publishes bucket events to NATS natively (JetStream on, with a local queue directory that
keeps events while NATS is unreachable). Two steps, in this order:

1. the MinIO *server* gets a NATS target through its environment (printed by this command;
   MinIO refuses a bucket notification whose target ARN it does not know), then restarts;
2. the *bucket* gets a notification configuration sending ``s3:ObjectCreated:*`` under the
   ingest prefixes to that target (done by this command, unless ``--dry-run``).

Usage::

    python -m infra.minio_notify --endpoint http://minio:9000 --access-key … --secret-key … \\
        --bucket shenava-media --arn arn:minio:sqs::SHENAVA:nats [--prefix incoming/] \\
        [--nats-address nats:4222] [--queue-dir /data/.shenava-events] [--dry-run]
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from urllib.parse import urlsplit

from minio import Minio
from minio.error import S3Error
from minio.notificationconfig import NotificationConfig, PrefixFilterRule, QueueConfig
from urllib3.exceptions import HTTPError

from events.subjects import OBJECT_CREATED
from functions.common.media_store import INCOMING, UPLOADS

ARN_PATTERN = re.compile(r"^arn:minio:sqs:[^:]*:(?P<id>[A-Za-z0-9_]+):nats$")
DEFAULT_PREFIXES = (UPLOADS, INCOMING)
OBJECT_CREATED_EVENTS = ["s3:ObjectCreated:*"]


def arn_identifier(arn: str) -> str:
    """The target id inside ``arn:minio:sqs::<ID>:nats``, used in the server env names."""
    match = ARN_PATTERN.match(arn)
    if match is None:
        raise ValueError(f"expected arn:minio:sqs::<ID>:nats, got {arn!r}")
    return match.group("id")


def notification_config(arn: str, prefixes: Sequence[str]) -> NotificationConfig:
    """One queue configuration per prefix (MinIO allows a single prefix rule per configuration)."""
    arn_identifier(arn)  # refuse a malformed ARN before MinIO does, with a clearer message
    configs = [
        QueueConfig(
            queue=arn,
            events=list(OBJECT_CREATED_EVENTS),
            config_id=f"shenava-{prefix.strip('/') or 'all'}",
            prefix_filter_rule=PrefixFilterRule(value=prefix) if prefix else None,
        )
        for prefix in prefixes
    ]
    return NotificationConfig(queue_config_list=configs)


def server_env(identifier: str, nats_address: str, queue_dir: str) -> dict[str, str]:
    """The MinIO server environment that defines the NATS target ``identifier``."""
    return {
        f"MINIO_NOTIFY_NATS_ENABLE_{identifier}": "on",
        f"MINIO_NOTIFY_NATS_ADDRESS_{identifier}": nats_address,
        f"MINIO_NOTIFY_NATS_SUBJECT_{identifier}": OBJECT_CREATED,
        f"MINIO_NOTIFY_NATS_JETSTREAM_{identifier}": "on",
        f"MINIO_NOTIFY_NATS_QUEUE_DIR_{identifier}": queue_dir,
    }


def minio_client(endpoint: str, access_key: str, secret_key: str) -> Minio:
    """``endpoint`` is ``host:port`` (HTTPS) or a URL whose scheme says which."""
    parts = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
    return Minio(
        parts.netloc,
        access_key=access_key,
        secret_key=secret_key,
        secure=parts.scheme == "https",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m infra.minio_notify",
        description="Send a MinIO bucket's object-created events to Shenava's NATS subject.",
    )
    parser.add_argument("--endpoint", required=True, help="MinIO URL, e.g. http://127.0.0.1:9000")
    parser.add_argument("--access-key", required=True)
    parser.add_argument("--secret-key", required=True)
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--arn", required=True, help="arn:minio:sqs::<ID>:nats")
    parser.add_argument(
        "--prefix",
        action="append",
        dest="prefixes",
        help=f"key prefix to notify on; repeatable (default: {' and '.join(DEFAULT_PREFIXES)})",
    )
    parser.add_argument("--nats-address", default="127.0.0.1:4222", help="host:port MinIO dials")
    parser.add_argument("--queue-dir", default="/data/.shenava-events", help="MinIO's event queue")
    parser.add_argument("--dry-run", action="store_true", help="print only; change nothing")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        identifier = arn_identifier(args.arn)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    print("# MinIO server environment (set it, restart MinIO, then configure the bucket):")
    for name, value in server_env(identifier, args.nats_address, args.queue_dir).items():
        print(f"{name}={value}")
    config = notification_config(args.arn, args.prefixes or list(DEFAULT_PREFIXES))
    if args.dry_run:
        return 0
    client = minio_client(args.endpoint, args.access_key, args.secret_key)
    try:
        client.set_bucket_notification(args.bucket, config)
    except (S3Error, HTTPError) as exc:
        print(f"MinIO refused or was unreachable: {exc}", file=sys.stderr)
        return 1
    ids = ", ".join(str(queue.config_id) for queue in config.queue_config_list)
    print(f"# bucket {args.bucket}: notifications {ids} → {args.arn}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
