"""Object-created notifications from three stores, normalised into one ``ObjectCreated``.

Three shapes reach Shenava:

- **MinIO** publishes ``{"EventName", "Key", "Records": [...]}`` on NATS; the records are
  AWS-style with ``eventSource: "minio:s3"`` and a query-escaped ``s3.object.key``.
- **AWS S3** invokes the ingest function with ``{"Records": [...]}`` (``eventName`` without the
  ``s3:`` prefix), or with ``{"Event": "s3:TestEvent", ...}`` when notifications are configured.
- **SeaweedFS** posts its filer webhook to the bridge: ``{"event_type", "key", "message":
  {"new_entry", "old_entry", "new_parent_path", ...}}`` with plain (not encoded) paths under
  ``/buckets/<bucket>/``.

The wire models below are lenient (aliases, unknown fields ignored, everything optional); only the
functions here turn them into domain events, so raw dicts never travel further. Each event's ``id``
is its dedupe key (``bucket/key@etag``): a second notification for the same object version is
dropped by the stream's duplicate window and by consumers.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import unquote_plus

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from events.models import ObjectCreated

SEAWEED_BUCKETS_DIR = "/buckets/"
# Top-level folders SeaweedFS's S3 gateway keeps inside a bucket for its own bookkeeping
# (multipart parts, object versions): never user objects.
SEAWEED_INTERNAL_DIRS = (".uploads", ".versions")
SEAWEED_FILE_EVENTS = ("create", "update", "rename")
# The S3 gateway keeps the object's S3 ETag here (base64 of the text): the md5 hex for a single
# PUT, "<md5 of part md5s>-<parts>" after a multipart upload, whose entry has no md5 attribute.
SEAWEED_ETAG_ATTRIBUTE = "Seaweed-X-Amz-ETag"


class UnknownPayload(ValueError):
    """The payload is none of the notification shapes Shenava understands."""


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)


# --- AWS / MinIO records -------------------------------------------------------------------


class _S3Bucket(_Wire):
    name: str = ""


class _S3Object(_Wire):
    key: str = ""
    size: int = 0
    etag: str = Field(default="", alias="eTag")
    sequencer: str = ""
    version_id: str = Field(default="", alias="versionId")


class _S3Entity(_Wire):
    bucket: _S3Bucket = Field(default_factory=_S3Bucket)
    object: _S3Object = Field(default_factory=_S3Object)


class S3Record(_Wire):
    event_name: str = Field(default="", alias="eventName")
    event_source: str = Field(default="", alias="eventSource")
    s3: _S3Entity = Field(default_factory=_S3Entity)


class S3Notification(_Wire):
    """AWS S3 event notification, also the ``Records`` part of MinIO's payload."""

    records: list[S3Record] = Field(default_factory=list, alias="Records")
    event: str = Field(default="", alias="Event")  # "s3:TestEvent" on a test notification


class MinioNotification(S3Notification):
    event_name: str = Field(default="", alias="EventName")
    key: str = Field(default="", alias="Key")  # "<bucket>/<key>", not encoded


# --- SeaweedFS filer webhook ---------------------------------------------------------------


class _SeaweedAttributes(_Wire):
    file_size: int = 0
    mtime: int = 0
    md5: str = ""  # base64 of the raw digest (Go's encoding/json writes protobuf bytes so)


class SeaweedEntry(_Wire):
    name: str = ""
    is_directory: bool = False
    attributes: _SeaweedAttributes = Field(default_factory=_SeaweedAttributes)
    extended: dict[str, str | None] = Field(default_factory=dict)  # values are base64


class _SeaweedMessage(_Wire):
    old_entry: SeaweedEntry | None = None
    new_entry: SeaweedEntry | None = None
    new_parent_path: str = ""


class SeaweedNotification(_Wire):
    event_type: str = ""
    key: str = ""
    message: _SeaweedMessage = Field(default_factory=_SeaweedMessage)


# --- normalisation -------------------------------------------------------------------------


def _object_created(
    *, bucket: str, key: str, size: int, etag: str, sequencer: str, source: str
) -> ObjectCreated:
    event = ObjectCreated(
        id="", bucket=bucket, key=key, size=size, etag=etag, sequencer=sequencer, source=source
    )
    # The id is the dedupe key, so publisher dedupe and consumer dedupe agree.
    return event.model_copy(update={"id": _header_safe(event.dedupe_key)})


def _header_safe(text: str) -> str:
    # The id travels as the Nats-Msg-Id header; a key may legally hold CR/LF or other controls.
    return "".join(f"%{ord(c):02X}" if ord(c) < 0x20 or ord(c) == 0x7F else c for c in text)


def _is_object_created(event_name: str) -> bool:
    # MinIO writes "s3:ObjectCreated:Put", AWS "ObjectCreated:Put".
    return event_name.removeprefix("s3:").startswith("ObjectCreated:")


def _record_event(record: S3Record, source: str) -> ObjectCreated | None:
    if not _is_object_created(record.event_name):
        return None
    obj = record.s3.object
    if not record.s3.bucket.name or not obj.key:
        return None
    return _object_created(
        bucket=record.s3.bucket.name,
        key=unquote_plus(obj.key),  # both stores query-escape the key: "+" is a space
        size=obj.size,
        etag=obj.etag.strip('"'),
        sequencer=obj.sequencer or obj.version_id,
        source=source,
    )


def _records_events(notification: S3Notification, source: str) -> list[ObjectCreated]:
    events = (_record_event(record, source) for record in notification.records)
    return [event for event in events if event is not None]


def from_aws(payload: dict[str, Any]) -> list[ObjectCreated]:
    """Object-created records of an AWS S3 event notification (a test event gives none)."""
    return _records_events(S3Notification.model_validate(payload), "aws")


def from_minio(payload: dict[str, Any]) -> list[ObjectCreated]:
    """Object-created records of a MinIO bucket notification."""
    return _records_events(MinioNotification.model_validate(payload), "minio")


def _split_bucket_path(path: str) -> tuple[str, str] | None:
    """``/buckets/<bucket>/<key>`` → (bucket, key); None for anything else or internal."""
    if not path.startswith(SEAWEED_BUCKETS_DIR):
        return None
    bucket, _, key = path.removeprefix(SEAWEED_BUCKETS_DIR).partition("/")
    if not bucket or not key or bucket.startswith("."):
        return None
    if key.split("/", 1)[0] in SEAWEED_INTERNAL_DIRS:
        return None
    return bucket, key


def _b64decode(value: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return b""


def _seaweed_etag(entry: SeaweedEntry) -> str:
    """The S3 ETag: the gateway's own record of it, else the hex of the md5 attribute."""
    stored = _b64decode(entry.extended.get(SEAWEED_ETAG_ATTRIBUTE) or "")
    if stored:
        return stored.decode("ascii", errors="replace").strip('"')
    return _b64decode(entry.attributes.md5).hex()


def _seaweed_new_path(notification: SeaweedNotification, entry: SeaweedEntry) -> str:
    # A rename's "key" is the old path; the new one is new_parent_path + new name.
    parent = notification.message.new_parent_path
    if parent and entry.name:
        return f"{parent.rstrip('/')}/{entry.name}"
    return notification.key


def from_seaweedfs(payload: dict[str, Any]) -> list[ObjectCreated]:
    """The object a SeaweedFS filer event leaves in a bucket, if any.

    Creates, overwrites ("update") and renames of a file under ``/buckets/<bucket>/`` count:
    each leaves an object at the new entry's path. Deletes, directories and internal paths do not.
    """
    notification = SeaweedNotification.model_validate(payload)
    entry = notification.message.new_entry
    if notification.event_type not in SEAWEED_FILE_EVENTS or entry is None or entry.is_directory:
        return []
    located = _split_bucket_path(_seaweed_new_path(notification, entry))
    if located is None:
        return []
    bucket, key = located
    attributes = entry.attributes
    return [
        _object_created(
            bucket=bucket,
            key=key,
            size=attributes.file_size,
            etag=_seaweed_etag(entry),
            # mtime (seconds) orders versions of a key and dedupes when there is no etag at all
            sequencer=str(attributes.mtime) if attributes.mtime else "",
            source="seaweedfs",
        )
    ]


def normalise(payload: dict[str, Any]) -> list[ObjectCreated]:
    """Detect the payload's shape and return the objects it announces (maybe none).

    Raises ``UnknownPayload`` for anything that is not one of the three shapes.
    """
    try:
        if "event_type" in payload and "message" in payload:
            return from_seaweedfs(payload)
        if "EventName" in payload:
            return from_minio(payload)
        if "Records" in payload or payload.get("Event") == "s3:TestEvent":
            return _from_records(payload)
    except ValidationError as exc:
        raise UnknownPayload(f"malformed notification: {exc.error_count()} errors") from exc
    raise UnknownPayload(f"unknown notification shape with keys {sorted(payload)[:10]}")


def _from_records(payload: dict[str, Any]) -> list[ObjectCreated]:
    # MinIO's records can also arrive alone (e.g. relayed through a webhook target).
    notification = S3Notification.model_validate(payload)
    sources = {record.event_source for record in notification.records}
    source = "minio" if any(s.startswith("minio") for s in sources) else "aws"
    return _records_events(notification, source)
