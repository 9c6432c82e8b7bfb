"""Every setting Shenava reads, in one place.

Settings come from the environment (prefix ``SHENAVA_``), an optional ``.env`` file and, for the
embedded stack, the endpoints file that ``make up`` writes (``<data_dir>/endpoints.json``).
They are built once by ``load_settings()`` in a bootstrap and passed down; nothing reads them at
import time.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SHENAVA_", env_file=".env", extra="ignore")

    environment: Literal["development", "production"] = "development"
    data_dir: Path = Path(".shenava")
    log_level: str = "INFO"

    # API
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    public_url: str = ""  # base URL clients see; defaults to http://api_host:api_port

    # External services; empty means "use the embedded stack" (see infra/)
    s3_endpoint_url: str = ""
    s3_access_key: str = ""
    s3_secret_key: str = ""
    s3_region: str = "us-east-1"
    media_bucket: str = "shenava-media"
    state_bucket: str = "shenava-state"
    nats_url: str = ""

    # Embedded stack
    nats_port: int = 4222
    s3_port: int = 8333
    seaweed_master_port: int = 9333
    seaweed_volume_port: int = 8380
    seaweed_filer_port: int = 8888
    bridge_port: int = 8011
    bind_host: str = "127.0.0.1"

    # Events
    stream_name: str = "SHENAVA"
    stream_max_age_days: float = 30.0
    ack_wait_s: float = 60.0
    max_deliver: int = 8
    retry_backoff_s: list[float] = Field(default_factory=lambda: [2.0, 10.0, 30.0, 120.0, 600.0])

    # Security
    secret_key: str = ""  # Fernet key for secrets at rest; generated into data_dir when empty
    outbound_allowlist: str = ""  # comma-separated CIDRs or host names allowed despite being private

    # Media
    min_audio_bytes: int = 100
    max_audio_bytes: int = 1024**3
    drop_tenant: str = "default"  # tenant that owns files dropped under incoming/

    # ASR
    asr_model: str = ""  # a faster-whisper model directory; empty = the bundled multilingual base
    asr_device: str = "cpu"
    asr_compute_type: str = "int8"
    asr_batch_size: int = 8
    asr_threads: int = 0
    asr_align_model: str = ""  # optional wav2vec2 alignment model directory
    asr_diarize_model: str = ""  # optional pyannote diarization pipeline directory
    model_cache: Path = Path.home() / ".cache" / "shenava" / "models"

    # Webhooks
    callback_challenge_timeout_s: float = 5.0
    callback_timeout_s: float = 10.0
    # Delays between notification attempts: exponential, about 9 hours in all by default.
    notify_backoff_s: list[float] = Field(
        default_factory=lambda: [5.0, 30.0, 120.0, 600.0, 1800.0, 3600.0, 7200.0, 14400.0]
    )

    # Results
    results_ttl_minutes: int = 7 * 24 * 60

    @model_validator(mode="after")
    def _refuse_insecure_production(self) -> Settings:
        if self.environment == "production" and not self.secret_key:
            raise ValueError("SHENAVA_SECRET_KEY must be set in production")
        return self

    @property
    def endpoints_file(self) -> Path:
        return self.data_dir / "endpoints.json"

    @property
    def embedded(self) -> bool:
        return not (self.s3_endpoint_url and self.nats_url)

    @property
    def base_url(self) -> str:
        return self.public_url.rstrip("/") or f"http://{self.api_host}:{self.api_port}"


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment, completed by the embedded stack's endpoints file."""
    settings = Settings(**overrides)  # type: ignore[arg-type]
    endpoints = settings.endpoints_file
    if endpoints.exists():
        known = json.loads(endpoints.read_text())
        fill = {
            key: value
            for key, value in known.items()
            if key in Settings.model_fields and not getattr(settings, key)
        }
        if fill:
            settings = settings.model_copy(update=fill)
    if not settings.secret_key:
        settings = settings.model_copy(update={"secret_key": _local_secret_key(settings)})
    return settings


def _local_secret_key(settings: Settings) -> str:
    """A development Fernet key kept in data_dir, made once."""
    from cryptography.fernet import Fernet

    path = settings.data_dir / "secret.key"
    if path.exists():
        return path.read_text().strip()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key().decode()
    path.write_text(key)
    path.chmod(0o600)
    return key
