"""infra/template.yaml and samconfig.toml: lint clean, and consistent with the code they deploy."""

from __future__ import annotations

import importlib
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest

from events.subjects import DATASET_DONE, NOTIFY, TRAIN_ORDER, TRANSCRIBE_ORDER, ConsumerSpec, event_type
from functions.common.lambda_entry import ApiFunction, SqsFunction
from functions.common.media_store import INCOMING, NORMALIZED, UPLOADS
from functions.common.settings import Settings
from functions.notify.handler import notify_spec
from functions.train.handler import SPEC as TRAIN_SPEC
from infra.processes import venv_executable
from tests.aws_support import TEMPLATE, get_att_target, load_template, resources

ROOT = TEMPLATE.parents[1]


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


def test_cfn_lint_passes() -> None:
    result = subprocess.run(
        [venv_executable("cfn-lint"), str(TEMPLATE)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("queue", "consumers"),
    [("TranscribeQueue", TRANSCRIBE_ORDER), ("NotifyQueue", (NOTIFY,)), ("TrainQueue", TRAIN_ORDER)],
)
def test_each_queue_subscribes_to_exactly_its_consumers_event_types(
    template: dict[str, Any], queue: str, consumers: tuple[ConsumerSpec, ...]
) -> None:
    subscriptions = [
        s["Properties"]
        for s in resources(template, "AWS::SNS::Subscription").values()
        if s["Properties"]["Protocol"] == "sqs" and get_att_target(s["Properties"]["Endpoint"]) == queue
    ]
    assert len(subscriptions) == 1
    wanted = {event_type(subject) for consumer in consumers for subject in consumer.subjects}
    assert set(subscriptions[0]["FilterPolicy"]["type"]) == wanted
    assert subscriptions[0]["RawMessageDelivery"] is True  # the body is the event itself


def _environment(template: dict[str, Any], function: str) -> dict[str, Any]:
    shared = template["Globals"]["Function"]["Environment"]["Variables"]
    own = template["Resources"][function]["Properties"].get("Environment", {}).get("Variables", {})
    return {**shared, **own}


def test_each_queue_keeps_one_receive_beyond_its_functions_last_attempt(template: dict[str, Any]) -> None:
    # The spare receive is where the runner fails a job whose last attempt died (events/aws.py).
    declared = int(_environment(template, "TranscribeFunction")["SHENAVA_MAX_DELIVER"])
    notify_attempts = notify_spec(Settings().notify_backoff_s).max_deliver or 0
    train_attempts = TRAIN_SPEC.max_deliver or int(
        _environment(template, "TrainFunction")["SHENAVA_MAX_DELIVER"]
    )
    expected = {
        "IngestQueue": declared,
        "TranscribeQueue": declared,
        "NotifyQueue": notify_attempts,
        "TrainQueue": train_attempts,
    }
    for queue, receives in expected.items():
        props = template["Resources"][queue]["Properties"]
        assert props["RedrivePolicy"]["maxReceiveCount"] == receives + 1, queue
        assert get_att_target(props["RedrivePolicy"]["deadLetterTargetArn"]).endswith("DeadLetterQueue")


def test_every_dead_letter_queue_has_an_alarm(template: dict[str, Any]) -> None:
    dead = {name for name in resources(template, "AWS::SQS::Queue") if name.endswith("DeadLetterQueue")}
    alarmed = {
        get_att_target(alarm["Properties"]["Dimensions"][0]["Value"])
        for alarm in resources(template, "AWS::CloudWatch::Alarm").values()
    }
    assert dead and dead == alarmed


def test_ingest_sees_client_prefixes_only_and_cannot_write_what_it_is_told_about(
    template: dict[str, Any],
) -> None:
    notifications = template["Resources"]["MediaBucket"]["Properties"]["NotificationConfiguration"]
    prefixes = {
        rule["Value"]
        for entry in notifications["QueueConfigurations"]
        for rule in entry["Filter"]["S3Key"]["Rules"]
        if rule["Name"] == "prefix"
    }
    assert prefixes == {INCOMING, UPLOADS}
    policy = template["Resources"]["IngestRole"]["Properties"]["Policies"][0]
    statements = policy["PolicyDocument"]["Statement"]
    writes = [s for s in statements if any(a in ("s3:PutObject", "s3:*") for a in _list(s["Action"]))]
    media_writes = [r for s in writes for r in _list(s["Resource"]) if "MediaBucket" in str(r)]
    assert media_writes == [{"Fn::Sub": f"${{MediaBucket.Arn}}/{NORMALIZED}*"}]


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_every_function_command_is_a_lambda_entry_and_its_queue_outlasts_its_timeout(
    template: dict[str, Any],
) -> None:
    parameters = template["Parameters"]
    for name, function in resources(template, "AWS::Serverless::Function").items():
        props = function["Properties"]
        module, _, attribute = props["ImageConfig"]["Command"][0].rpartition(".")
        handler = getattr(importlib.import_module(module), attribute)
        assert isinstance(handler, SqsFunction | ApiFunction), name
        timeout = props["Timeout"]
        longest = parameters[timeout["Ref"]]["MaxValue"] if isinstance(timeout, dict) else timeout
        for event in props.get("Events", {}).values():
            if event["Type"] == "SQS":
                queue = template["Resources"][get_att_target(event["Properties"]["Queue"])]["Properties"]
                assert queue["VisibilityTimeout"] >= longest, name
                assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_every_environment_variable_is_a_setting(template: dict[str, Any]) -> None:
    for name in resources(template, "AWS::Serverless::Function"):
        for variable in _environment(template, name):
            assert variable.startswith("SHENAVA_")
            assert variable.removeprefix("SHENAVA_").lower() in Settings.model_fields, variable


def test_samconfig_has_default_dev_and_prod_with_what_a_deploy_needs() -> None:
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    assert config["default"]["build"]["parameters"]["template_file"] == "infra/template.yaml"
    assert (ROOT / config["default"]["build"]["parameters"]["template_file"]).exists()
    for env in ("default", "dev", "prod"):
        deploy = config[env]["deploy"]["parameters"]
        assert deploy["stack_name"] and deploy["region"] and deploy["parameter_overrides"]
        assert deploy["capabilities"] == "CAPABILITY_IAM"
        assert deploy["resolve_s3"] is True and deploy["resolve_image_repos"] is True
        assert "template_file" not in deploy  # deploy takes the built template


def test_every_image_is_built_from_a_dockerfile_in_infra(template: dict[str, Any]) -> None:
    for name, function in resources(template, "AWS::Serverless::Function").items():
        metadata = function["Metadata"]
        context = (TEMPLATE.parent / metadata["DockerContext"]).resolve()
        assert context == ROOT.resolve(), name
        assert Path(context / metadata["Dockerfile"]).is_file(), name


def _statements(template: dict[str, Any], role: str) -> list[dict[str, Any]]:
    return [
        s
        for p in template["Resources"][role]["Properties"]["Policies"]
        for s in p["PolicyDocument"]["Statement"]
    ]


def test_no_queue_receives_dataset_work_done(template: dict[str, Any]) -> None:
    # The API waits for it on NATS core; on AWS it must not feed train its own answer.
    for subscription in resources(template, "AWS::SNS::Subscription").values():
        types = subscription["Properties"].get("FilterPolicy", {}).get("type", [])
        assert event_type(DATASET_DONE) not in types
        assert all(isinstance(t, str) for t in types)  # exact types, no prefix matching


def test_train_runs_its_lambda_entry_from_its_own_image_with_room_to_train(template: dict[str, Any]) -> None:
    function = template["Resources"]["TrainFunction"]
    props = function["Properties"]
    assert props["ImageConfig"]["Command"] == ["functions.train.lambda_function.handler"]
    assert function["Metadata"]["Dockerfile"] == "infra/Dockerfile.train"
    assert get_att_target(props["Role"]) == "TrainRole"
    assert props["LoggingConfig"]["LogGroup"] == {"Ref": "TrainLogGroup"}
    parameters = template["Parameters"]
    assert parameters[props["Timeout"]["Ref"]]["Default"] == 900
    assert parameters[props["MemorySize"]["Ref"]]["MinValue"] >= 3008
    queue = template["Resources"]["TrainQueue"]["Properties"]
    assert queue["VisibilityTimeout"] == 6 * parameters[props["Timeout"]["Ref"]]["MaxValue"]
    [source] = props["Events"].values()
    assert get_att_target(source["Properties"]["Queue"]) == "TrainQueue"
    assert source["Properties"]["BatchSize"] == 1


def test_train_role_is_scoped_to_its_queue_the_topic_the_state_and_kashf_media(
    template: dict[str, Any],
) -> None:
    statements = _statements(template, "TrainRole")
    resources_by_action: dict[str, list[Any]] = {}
    for statement in statements:
        assert statement["Effect"] == "Allow"
        for action in _list(statement["Action"]):
            assert "*" not in action, action
            resources_by_action.setdefault(action, []).extend(_list(statement["Resource"]))
    media = {"Fn::Sub": "${MediaBucket.Arn}/kashf/*"}
    assert resources_by_action["s3:GetObject"] == [{"Fn::Sub": "${StateBucket.Arn}/*"}, media]
    assert resources_by_action["s3:PutObject"] == [{"Fn::Sub": "${StateBucket.Arn}/*"}, media]
    assert resources_by_action["sns:Publish"] == [{"Ref": "EventsTopic"}]
    assert resources_by_action["sqs:ReceiveMessage"] == [{"Fn::GetAtt": ["TrainQueue", "Arn"]}]
    assert "s3:DeleteObject" not in resources_by_action


def test_the_api_may_publish_dataset_requests_and_store_kashf_media(template: dict[str, Any]) -> None:
    statements = _statements(template, "ApiRole")
    publish = [s for s in statements if "sns:Publish" in _list(s["Action"])]
    assert [s["Resource"] for s in publish] == [{"Ref": "EventsTopic"}]
    writes = [r for s in statements if "s3:PutObject" in _list(s["Action"]) for r in _list(s["Resource"])]
    assert {"Fn::Sub": "${MediaBucket.Arn}/kashf/*"} in writes


def test_every_dead_letter_queue_is_in_the_outputs(template: dict[str, Any]) -> None:
    dead = {name for name in resources(template, "AWS::SQS::Queue") if name.endswith("DeadLetterQueue")}
    listed = template["Outputs"]["DeadLetterQueues"]["Value"]["Fn::Join"][1]
    assert {ref["Ref"] for ref in listed} == dead
