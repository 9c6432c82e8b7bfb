"""The Lambda adapters on moto: its AWS APIs served over HTTP by a thread of this process.

The adapters talk aiobotocore, which moto's in-process patching does not reach, so moto runs as
a real server on a free loopback port (``ThreadedMotoServer``); its state is reset per test.
The scenarios are shared with the LocalStack-compatible tier (tests/aws_scenarios.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from functions.api.app import create_app
from functions.common.lambda_entry import ApiFunction
from tests import aws_scenarios as scenario
from tests.aws_support import AwsWorld, FakeContext, http_api_event


def test_a_dropped_file_with_an_encoded_key_becomes_a_queued_job(world: AwsWorld, tmp_path: Path) -> None:
    scenario.drop_folder_file_becomes_a_queued_job(world, tmp_path)


def test_long_media_is_refused_at_ingest_with_the_limit_and_the_alternative(
    world: AwsWorld, tmp_path: Path
) -> None:
    scenario.long_media_is_refused_at_ingest(world, tmp_path)


def test_a_batch_with_one_bad_record_reports_exactly_that_record(world: AwsWorld, tmp_path: Path) -> None:
    scenario.batch_with_one_bad_record_reports_exactly_that_one(world, tmp_path)


def test_the_api_adapter_answers_a_watson_request(world: AwsWorld, tmp_path: Path) -> None:
    scenario.api_answers_a_watson_request(world, tmp_path)


def test_a_cold_start_takes_secrets_from_ssm_and_secrets_manager(
    world: AwsWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In production the Fernet key comes from SSM and the seed API key from Secrets Manager."""
    fernet = Fernet.generate_key().decode()
    world.clients("ssm").put_parameter(Name="/shenava/test/secret-key", Type="SecureString", Value=fernet)
    seed = world.clients("secretsmanager").create_secret(Name="seed", SecretString="shv_seed_key_0123456789")
    settings = world.settings()
    environment = {
        "ENVIRONMENT": "production",
        "SECRET_KEY": "",
        "SECRET_KEY_PARAMETER": "/shenava/test/secret-key",
        "API_KEY_SEED_SECRET": seed["ARN"],
        "API_KEY_SEED_TENANT": "acme",
        **{
            name.upper(): str(getattr(settings, name))
            for name in ("data_dir", "s3_endpoint_url", "aws_endpoint_url", "s3_access_key", "s3_secret_key")
        },
        **{name.upper(): str(getattr(settings, name)) for name in ("media_bucket", "state_bucket")},
    }
    for name, value in environment.items():
        monkeypatch.setenv(f"SHENAVA_{name}", value)
    api = ApiFunction(create_app)  # settings from the environment, as on Lambda
    world.opened.append(api)

    auth = {"authorization": "Bearer shv_seed_key_0123456789"}
    response = world.thread.call(api, http_api_event("GET", "/v1/recognitions", headers=auth), FakeContext())

    assert response["statusCode"] == 200
    loaded = world.thread.call(api.runtime.run, api.runtime.settings())
    assert loaded.environment == "production" and loaded.secret_key == fernet
