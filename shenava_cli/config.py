"""Where the server is and which key to use: flags, then the environment, then a config file,
then a Shenava checkout's own files (``.shenava/dev-api-key``, written by ``make up``).

The config file is TOML: ``$SHENAVA_CONFIG``, else ``$XDG_CONFIG_HOME/shenava/config.toml``
(``~/.config/shenava/config.toml``)::

    url = "https://shenava.example.org"
    api_key = "shv_…"
    endpoints = "/srv/shenava/.shenava/endpoints.json"   # S3 credentials for the drop folder
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from shenava_cli.errors import CliError, ExitCode

DEFAULT_URL = "http://127.0.0.1:8000"
LOCAL_DATA = Path(".shenava")


@dataclass(frozen=True)
class Config:
    url: str
    api_key: str
    endpoints: Path

    def require_key(self) -> str:
        if not self.api_key:
            raise CliError(
                "no API key: pass --key, set SHENAVA_API_KEY, or put api_key in "
                f"{config_path()} (a local `make up` writes .shenava/dev-api-key)",
                ExitCode.AUTH,
            )
        return self.api_key


def config_path() -> Path:
    if os.environ.get("SHENAVA_CONFIG"):
        return Path(os.environ["SHENAVA_CONFIG"])
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "shenava" / "config.toml"


def _file_settings(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    try:
        found = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, OSError) as exc:
        raise CliError(f"{path} is not a readable TOML file: {exc}", ExitCode.USAGE) from exc
    return {k: str(v) for k, v in found.items() if k in {"url", "api_key", "endpoints"}}


def _local_key() -> str:
    path = LOCAL_DATA / "dev-api-key"
    return path.read_text().strip() if path.is_file() else ""


def load_config(url: str | None = None, api_key: str | None = None) -> Config:
    saved = _file_settings(config_path())
    chosen_url = url or os.environ.get("SHENAVA_URL") or saved.get("url") or DEFAULT_URL
    key = api_key or os.environ.get("SHENAVA_API_KEY") or saved.get("api_key") or _local_key()
    endpoints = (
        os.environ.get("SHENAVA_ENDPOINTS") or saved.get("endpoints") or str(LOCAL_DATA / "endpoints.json")
    )
    return Config(url=chosen_url.rstrip("/"), api_key=key, endpoints=Path(endpoints))
