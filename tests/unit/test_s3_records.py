"""Normalising object-created notifications: captured SeaweedFS payloads, MinIO and AWS samples."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from events.s3_records import UnknownPayload, from_aws, from_minio, from_seaweedfs, normalise

EVENTS = Path(__file__).parent.parent / "events"
MEDIA = "shenava-media"
ETAG_500X = "86c489dfa7e78a487a06b1860805b086"  # md5 of b"x" * 500
ETAG_600Y = "8fbf8d1881e85c4858e6d4b8a84e0922"  # md5 of b"y" * 600
ETAG_MULTIPART = "42d33973926db3ebf8f1b066200706bb-2"


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return data


def summary(payload: dict[str, Any]) -> list[tuple[str, str, int, str, str]]:
    return [(e.bucket, e.key, e.size, e.etag, e.source) for e in normalise(payload)]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("seaweedfs_create.json", (MEDIA, "incoming/b1/a b.wav", 500, ETAG_500X)),
        ("seaweedfs_update_overwrite.json", (MEDIA, "incoming/b1/a b.wav", 600, ETAG_600Y)),
        ("seaweedfs_update_tagging.json", (MEDIA, "incoming/b1/a b.wav", 600, ETAG_600Y)),
        ("seaweedfs_create_copy.json", (MEDIA, "incoming/b2/copy.wav", 600, ETAG_600Y)),
        ("seaweedfs_rename.json", (MEDIA, "incoming/b3/moved.wav", 600, ETAG_600Y)),
        (
            "seaweedfs_create_multipart.json",
            (MEDIA, "incoming/b1/big é.wav", 5243880, ETAG_MULTIPART),
        ),
        (
            "seaweedfs_create_state.json",
            ("shenava-state", "tenants/t/jobs/1.json", 2, "99914b932bd37a50b983c5e7c90ae93b"),
        ),
    ],
)
def test_seaweedfs_file_events_become_object_created(name: str, expected: tuple[str, str, int, str]) -> None:
    assert summary(load(name)) == [(*expected, "seaweedfs")]


@pytest.mark.parametrize(
    "name",
    [
        "seaweedfs_delete.json",
        "seaweedfs_create_directory.json",
        "seaweedfs_create_system.json",
        "seaweedfs_create_multipart_part.json",
    ],
)
def test_seaweedfs_deletes_directories_and_internal_paths_are_ignored(name: str) -> None:
    assert from_seaweedfs(load(name)) == []


def test_seaweedfs_event_id_is_the_dedupe_key_and_sequencer_the_mtime() -> None:
    (event,) = from_seaweedfs(load("seaweedfs_create.json"))
    assert event.id == event.dedupe_key == f"{MEDIA}/incoming/b1/a b.wav@{ETAG_500X}"
    assert event.sequencer == "1795286415"
    assert event.tenant == ""


def test_seaweedfs_metadata_only_update_repeats_the_overwrite_id() -> None:
    # Tagging rewrites the entry; the same id lets the stream drop the repeat.
    (overwrite,) = from_seaweedfs(load("seaweedfs_update_overwrite.json"))
    (tagging,) = from_seaweedfs(load("seaweedfs_update_tagging.json"))
    assert overwrite.id == tagging.id


def test_seaweedfs_etag_falls_back_to_md5_then_to_mtime() -> None:
    payload = load("seaweedfs_create.json")
    without_extended = copy.deepcopy(payload)
    del without_extended["message"]["new_entry"]["extended"]
    (event,) = from_seaweedfs(without_extended)
    assert event.etag == ETAG_500X  # hex of the base64 md5 attribute

    bare = copy.deepcopy(without_extended)
    del bare["message"]["new_entry"]["attributes"]["md5"]
    (event,) = from_seaweedfs(bare)
    assert event.etag == ""
    assert event.id == f"{MEDIA}/incoming/b1/a b.wav@1795286415"


@pytest.mark.parametrize(
    "path",
    ["/other/shenava-media/a.wav", "/buckets/shenava-media", "/buckets/.system/x", "/buckets//a"],
)
def test_seaweedfs_paths_outside_a_bucket_are_ignored(path: str) -> None:
    payload = load("seaweedfs_create.json")
    payload["key"] = path
    parent, _, name = path.rpartition("/")
    payload["message"]["new_parent_path"] = parent
    payload["message"]["new_entry"]["name"] = name
    assert from_seaweedfs(payload) == []


def test_seaweedfs_unknown_event_type_is_ignored() -> None:
    payload = load("seaweedfs_create.json")
    payload["event_type"] = "truncate"
    assert from_seaweedfs(payload) == []


def test_minio_put_key_is_url_decoded() -> None:
    (event,) = from_minio(load("minio_put.json"))
    assert (event.bucket, event.key, event.size, event.etag, event.source) == (
        MEDIA,
        "incoming/b1/call été.wav",
        500,
        ETAG_500X,
        "minio",
    )
    assert event.sequencer == "187A0F2C3D5A1B2C"
    assert event.id == f"{MEDIA}/incoming/b1/call été.wav@{ETAG_500X}"


def test_minio_multipart_is_an_object_created() -> None:
    assert summary(load("minio_multipart.json")) == [
        (MEDIA, "uploads/acme/01JD7ZP7Q3/long call.mp3", 5243880, ETAG_MULTIPART, "minio")
    ]


def test_aws_records_decode_plus_and_percent_and_skip_removals() -> None:
    assert [(e.key, e.etag, e.source) for e in from_aws(load("aws_put.json"))] == [
        ("incoming/b1/call été.wav", ETAG_500X, "aws"),
        ("incoming/b2/a+b c.wav", ETAG_MULTIPART, "aws"),
    ]
    assert summary(load("aws_put.json")) == [
        (MEDIA, "incoming/b1/call été.wav", 500, ETAG_500X, "aws"),
        (MEDIA, "incoming/b2/a+b c.wav", 5243880, ETAG_MULTIPART, "aws"),
    ]


def test_aws_test_event_gives_nothing() -> None:
    assert from_aws(load("aws_test_event.json")) == []
    assert normalise(load("aws_test_event.json")) == []


def test_quoted_etag_is_unquoted() -> None:
    payload = load("aws_put.json")
    payload["Records"][0]["s3"]["object"]["eTag"] = f'"{ETAG_500X}"'
    assert from_aws(payload)[0].etag == ETAG_500X


def test_minio_records_without_the_envelope_keep_their_source() -> None:
    records = {"Records": load("minio_put.json")["Records"]}
    assert [e.source for e in normalise(records)] == ["minio"]


def test_control_characters_in_a_key_are_escaped_in_the_id() -> None:
    payload = load("aws_put.json")
    payload["Records"][0]["s3"]["object"]["key"] = "incoming/b1/a%0D%0Ab.wav"
    event = from_aws(payload)[0]
    assert event.key == "incoming/b1/a\r\nb.wav"
    assert event.id == f"{MEDIA}/incoming/b1/a%0D%0Ab.wav@{ETAG_500X}"


@pytest.mark.parametrize(
    "payload",
    [{}, {"hello": "world"}, {"Event": "s3:Something"}],
)
def test_unknown_shapes_are_refused(payload: dict[str, Any]) -> None:
    with pytest.raises(UnknownPayload):
        normalise(payload)


def test_malformed_known_shape_is_refused() -> None:
    with pytest.raises(UnknownPayload):
        normalise({"event_type": "create", "key": "/buckets/b/k", "message": "not an object"})
