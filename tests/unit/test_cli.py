"""The command line's own logic: configuration, arguments and exit codes (the commands against a
running server are in tests/integration/test_cli_e2e.py; subtitles are the server's, tested in
tests/unit/test_subtitles.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from shenava_cli.app import app, since_time
from shenava_cli.config import load_config
from shenava_cli.errors import ExitCode


def test_configuration_comes_from_flags_then_environment_then_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_file = tmp_path / "config.toml"
    config_file.write_text('url = "https://file.example/"\napi_key = "from-file"\n')
    monkeypatch.setenv("SHENAVA_CONFIG", str(config_file))
    monkeypatch.delenv("SHENAVA_URL", raising=False)
    monkeypatch.delenv("SHENAVA_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    assert (load_config().url, load_config().api_key) == ("https://file.example", "from-file")
    monkeypatch.setenv("SHENAVA_API_KEY", "from-env")
    assert load_config().api_key == "from-env"
    assert load_config(api_key="from-flag", url="http://flag").url == "http://flag"
    assert load_config(api_key="from-flag").api_key == "from-flag"


def test_since_accepts_durations_and_dates() -> None:
    assert since_time("2024-03-01") == "2024-03-01T00:00:00+00:00"
    assert since_time("30m") is not None and since_time(None) is None


def run_cli(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(app, list(args), env={"SHENAVA_CONFIG": "/nonexistent", **(env or {})})


def test_usage_errors_and_missing_keys_have_their_exit_codes(tmp_path: Path) -> None:
    audio = tmp_path / "a.wav"
    audio.write_bytes(b"RIFF")
    unknown = run_cli("--key", "k", "transcribe", str(audio), "--format", "docx")
    assert unknown.exit_code == ExitCode.USAGE and "unknown format docx" in unknown.output
    missing = run_cli("--key", "k", "--url", "http://127.0.0.1:9", "transcribe", str(tmp_path / "nope.wav"))
    assert missing.exit_code == ExitCode.USAGE and "is not a file" in missing.output
    keyless = run_cli("jobs", env={"SHENAVA_API_KEY": ""})
    assert keyless.exit_code == ExitCode.AUTH and "no API key" in keyless.output
    since = run_cli("--key", "k", "jobs", "--since", "last tuesday")
    assert since.exit_code == ExitCode.USAGE


def test_an_unreachable_server_is_exit_code_3_also_in_json() -> None:
    result = run_cli("--url", "http://127.0.0.1:9", "--key", "k", "jobs", "--json")
    assert result.exit_code == ExitCode.UNREACHABLE
    assert '"code": 3' in result.stdout and "cannot reach http://127.0.0.1:9" in result.stdout


def test_the_drop_folder_needs_endpoints(tmp_path: Path) -> None:
    (tmp_path / "a.wav").write_bytes(b"RIFF")
    result = run_cli(
        "batch", "push", str(tmp_path), "--batch", "b1", "--endpoints", str(tmp_path / "none.json")
    )
    assert result.exit_code == ExitCode.USAGE and "does not exist" in result.output
