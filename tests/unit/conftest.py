"""Unit-test fixtures: a moto server and the Shenava topology on it, for the AWS-only code paths
(started only by the tests that ask for ``world``)."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from tests.aws_support import AwsWorld, LambdaThread, create_topology


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def world(moto_endpoint: str, tmp_path: Path) -> Iterator[AwsWorld]:
    reset = urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST")
    urllib.request.urlopen(reset, timeout=10).close()
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )

    def clients(service: str) -> object:
        return session.client(service, endpoint_url=moto_endpoint)  # type: ignore[call-overload]

    world = AwsWorld(moto_endpoint, clients, create_topology(clients), LambdaThread(), tmp_path / "data")
    try:
        yield world
    finally:
        world.close()
