"""The server's buckets over S3, with the credentials a deployment hands out in
``endpoints.json`` (``make up`` writes ``.shenava/endpoints.json``): the drop folder in the media
bucket, and API keys in the state bucket. Only S3 calls; nothing of the server's code."""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shenava_cli.errors import CliError, ExitCode

TENANT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


@dataclass(frozen=True)
class Endpoints:
    s3_endpoint_url: str
    s3_access_key: str
    s3_secret_key: str
    s3_region: str
    media_bucket: str
    state_bucket: str

    @classmethod
    def load(cls, path: Path) -> Endpoints:
        try:
            found = json.loads(path.read_text())
        except FileNotFoundError as exc:
            raise CliError(
                f"{path} does not exist: point --endpoints (or SHENAVA_ENDPOINTS) at the "
                "endpoints.json of your Shenava (make up writes .shenava/endpoints.json)",
                ExitCode.USAGE,
            ) from exc
        except (OSError, json.JSONDecodeError) as exc:
            raise CliError(f"{path} is not a readable endpoints file: {exc}", ExitCode.USAGE) from exc
        fields = ("s3_endpoint_url", "s3_access_key", "s3_secret_key", "media_bucket", "state_bucket")
        missing = [name for name in fields if not found.get(name)]
        if missing:
            raise CliError(f"{path} lacks {', '.join(missing)}", ExitCode.USAGE)
        return cls(
            **{name: str(found[name]) for name in fields}, s3_region=str(found.get("s3_region", "us-east-1"))
        )

    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3", endpoint_url=self.s3_endpoint_url, aws_access_key_id=self.s3_access_key,
            aws_secret_access_key=self.s3_secret_key, region_name=self.s3_region,
            # path-style and checksums only when required: what SeaweedFS and MinIO accept
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3, "mode": "standard"},
                          request_checksum_calculation="when_required",
                          response_checksum_validation="when_required", connect_timeout=10, read_timeout=120),
        )  # fmt: skip


def s3_call(what: str, call: Callable[[], Any]) -> Any:
    """One S3 call; its failures as CLI errors (unreachable endpoint, refused credentials)."""
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

    try:
        return call()
    except EndpointConnectionError as exc:
        raise CliError(f"{what}: cannot reach the S3 endpoint ({exc})", ExitCode.UNREACHABLE) from exc
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        kind = (
            ExitCode.AUTH
            if code in {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"}
            else ExitCode.FAILED
        )
        raise CliError(f"{what}: {code or exc}", kind) from exc
    except BotoCoreError as exc:
        raise CliError(f"{what}: {exc}", ExitCode.FAILED) from exc


def create_key(endpoints: Endpoints, tenant: str, name: str) -> str:
    """A new API key for ``tenant``, stored as the server stores keys: only its sha256, in
    ``keys/<sha256>.json`` of the state bucket (written only if new)."""
    if not TENANT.match(tenant):
        raise CliError("a tenant is 1-63 lower-case letters, digits, '-' or '_'", ExitCode.USAGE)
    key = "shv_" + secrets.token_urlsafe(32)
    doc = {"tenant": tenant, "scopes": ["*"], "name": name, "created_at": datetime.now(UTC).isoformat()}
    body = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()
    client = endpoints.client()
    s3_call("storing the key", lambda: client.put_object(
        Bucket=endpoints.state_bucket, Key=f"keys/{hashlib.sha256(key.encode()).hexdigest()}.json",
        Body=body, ContentType="application/json", IfNoneMatch="*",
    ))  # fmt: skip
    return key
