"""The Lambda adapters against a LocalStack-compatible endpoint, reached with localstack-client.

With ``LOCALSTACK_HOST`` set (``host:port`` of a running LocalStack), the tests use it. Otherwise
the fixture starts ``moto_server`` as a separate process on a free loopback port — the same
edge-style endpoint, every service on one port — and localstack-client is pointed at it. The
scenarios are the ones the unit tier runs on moto in-process (tests/aws_scenarios.py).
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest
from localstack_client.config import get_service_endpoint
from localstack_client.session import Session

from infra.processes import venv_executable
from tests import aws_scenarios as scenario
from tests.aws_support import AwsWorld, LambdaThread, create_topology

STARTUP_TIMEOUT_S = 60.0
RUNNING = re.compile(r"Running on http://127\.0\.0\.1:(\d+)")


def _watch(stream: IO[str], announced: queue.Queue[int | None]) -> None:
    """Report the port moto_server announces, then keep draining its log so it never blocks."""
    for line in stream:
        match = RUNNING.search(line)
        if match:
            announced.put(int(match.group(1)))
    announced.put(None)  # the process ended


@pytest.fixture(scope="module")
def localstack_host() -> Iterator[str]:
    given = os.environ.get("LOCALSTACK_HOST", "").strip()
    if given:
        yield given
        return
    process = subprocess.Popen(
        [venv_executable("moto_server"), "-H", "127.0.0.1", "-p", "0"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    announced: queue.Queue[int | None] = queue.Queue()
    threading.Thread(target=_watch, args=(process.stderr, announced), daemon=True).start()
    try:
        port = announced.get(timeout=STARTUP_TIMEOUT_S)
        assert port is not None, f"moto_server exited with {process.wait()}"
        yield f"127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def world(localstack_host: str, tmp_path: Path) -> Iterator[AwsWorld]:
    session = Session(localstack_host=localstack_host)
    endpoint = get_service_endpoint("s3", localstack_host=localstack_host)
    assert endpoint is not None

    def clients(service: str) -> Any:
        return session.client(service)

    world = AwsWorld(endpoint, clients, create_topology(clients), LambdaThread(), tmp_path / "data")
    try:
        yield world
    finally:
        world.close()


def test_a_dropped_file_with_an_encoded_key_becomes_a_queued_job(world: AwsWorld, tmp_path: Path) -> None:
    scenario.drop_folder_file_becomes_a_queued_job(world, tmp_path)


def test_long_media_is_refused_at_ingest(world: AwsWorld, tmp_path: Path) -> None:
    scenario.long_media_is_refused_at_ingest(world, tmp_path)


def test_a_batch_with_one_bad_record_reports_exactly_that_record(world: AwsWorld, tmp_path: Path) -> None:
    scenario.batch_with_one_bad_record_reports_exactly_that_one(world, tmp_path)


def test_the_api_adapter_answers_a_watson_request(world: AwsWorld, tmp_path: Path) -> None:
    scenario.api_answers_a_watson_request(world, tmp_path)
