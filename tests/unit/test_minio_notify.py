"""The MinIO bucket notification and server environment that ``infra.minio_notify`` produces."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from minio.xml import marshal

from infra.minio_notify import arn_identifier, main, notification_config, server_env

ARN = "arn:minio:sqs::SHENAVA:nats"
NS = {"s3": "http://s3.amazonaws.com/doc/2006-03-01/"}


def text(element: ET.Element, path: str) -> str | None:
    return element.findtext(path, namespaces=NS)


def test_one_queue_configuration_per_prefix_for_object_created() -> None:
    config = notification_config(ARN, ["incoming/", "uploads/"])
    queues = ET.fromstring(marshal(config)).findall("s3:QueueConfiguration", NS)
    assert [text(q, "s3:Queue") for q in queues] == [ARN, ARN]
    assert [text(q, "s3:Event") for q in queues] == ["s3:ObjectCreated:*"] * 2
    assert [text(q, "s3:Id") for q in queues] == ["shenava-incoming", "shenava-uploads"]
    rule = "s3:Filter/s3:S3Key/s3:FilterRule/"
    found = [(text(q, rule + "s3:Name"), text(q, rule + "s3:Value")) for q in queues]
    assert found == [("prefix", "incoming/"), ("prefix", "uploads/")]


def test_server_env_names_the_target_by_its_arn_id() -> None:
    assert server_env(arn_identifier(ARN), "nats:4222", "/data/q") == {
        "MINIO_NOTIFY_NATS_ENABLE_SHENAVA": "on",
        "MINIO_NOTIFY_NATS_ADDRESS_SHENAVA": "nats:4222",
        "MINIO_NOTIFY_NATS_SUBJECT_SHENAVA": "shenava.s3.object.created",
        "MINIO_NOTIFY_NATS_JETSTREAM_SHENAVA": "on",
        "MINIO_NOTIFY_NATS_QUEUE_DIR_SHENAVA": "/data/q",
    }


@pytest.mark.parametrize("arn", ["arn:minio:sqs::SHENAVA:webhook", "arn:aws:sqs::1:nats", "SHENAVA"])
def test_malformed_arn_is_refused(arn: str) -> None:
    with pytest.raises(ValueError):
        notification_config(arn, ["incoming/"])


def test_dry_run_prints_the_env_and_changes_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--endpoint", "http://127.0.0.1:1", "--access-key", "a", "--secret-key", "b"]
    assert main([*argv, "--bucket", "media", "--arn", ARN, "--dry-run"]) == 0
    assert "MINIO_NOTIFY_NATS_SUBJECT_SHENAVA=shenava.s3.object.created" in capsys.readouterr().out
