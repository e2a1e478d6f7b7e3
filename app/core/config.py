"""Settings: one pydantic-settings class, prefix ``REPRISE_``, nested groups with ``__``."""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEV_SECRET = "dev-only-secret-change-me"  # noqa: S105 - refused outside development


class UploadSettings(BaseModel):
    """Caps on what one request may send."""

    max_package_bytes: int = 100 * 2**20
    max_json_bytes: int = 1 * 2**20
    max_multipart_parts: int = 8
    max_extracted_bytes: int = 512 * 2**20
    max_entries: int = 10_000
    max_entry_bytes: int = 256 * 2**20
    max_ratio: float = 200.0


class QuotaSettings(BaseModel):
    """Fair use: per-user and global limits answered with 429 + Retry-After."""

    submissions_per_day: int = 50
    active_jobs_per_user: int = 500
    queue_cap: int = 20_000
    comments_per_hour: int = 60  # per user, all submissions together: a flood ends in 429


class QueueSettings(BaseModel):
    """The job queue and its leases."""

    lease_ttl_s: float = 30.0
    max_attempts: int = 3
    long_poll_cap_s: float = 30.0
    sweep_interval_s: float = 5.0


class WebhookSettings(BaseModel):
    """Outgoing webhooks: SSRF policy, limits, and the retry schedule."""

    allow_private_targets: bool = Field(
        default=False, description="allow loopback/private/link-local targets (development only)"
    )
    max_per_user: int = Field(default=10, ge=1)
    max_attempts: int = Field(default=8, ge=1, description="attempts before a delivery fails")
    retry_base_s: float = Field(default=30.0, gt=0, description="first retry delay; doubles")
    retry_max_s: float = Field(default=3600.0, gt=0)
    timeout_s: float = Field(default=10.0, gt=0, description="whole request, connect to headers")
    poll_interval_s: float = Field(
        default=5.0, gt=0, description="how often due retries are looked for"
    )
    lease_s: float = Field(default=120.0, gt=0, description="a claimed delivery's lock")
    batch: int = Field(default=20, ge=1)
    concurrency: int = Field(default=4, ge=1)


class Settings(BaseSettings):
    """Everything configurable about a Reprise server; read from ``REPRISE_*`` variables."""

    model_config = SettingsConfigDict(
        env_prefix="REPRISE_",
        env_nested_delimiter="__",
        env_file=None,
        extra="ignore",
    )

    environment: Literal["development", "test", "production"] = "development"
    database_url: str = ""  # empty: SQLite under data_dir
    data_dir: Path = REPO_ROOT / "var"
    benchmarks_dir: Path = REPO_ROOT / "benchmarks"
    secret_key: SecretStr = SecretStr(DEV_SECRET)
    public_url: str = "http://127.0.0.1:8000"
    allow_registration: bool = True
    allow_unsandboxed: bool = False
    approved_bases: list[str] = Field(default_factory=lambda: ["python-numpy"])
    page_limit_default: int = 50
    page_limit_max: int = 200
    log_json: bool = False
    log_level: str = "INFO"
    sqlite_busy_timeout_ms: int = 30_000
    uploads: UploadSettings = Field(default_factory=UploadSettings)
    quotas: QuotaSettings = Field(default_factory=QuotaSettings)
    queue: QueueSettings = Field(default_factory=QueueSettings)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)

    @model_validator(mode="after")
    def _refuse_default_secret(self) -> Settings:
        secret = self.secret_key.get_secret_value()
        if self.environment == "production" and (secret == DEV_SECRET or len(secret) < 32):
            raise ValueError(
                "REPRISE_SECRET_KEY must be set to a random value of at least 32 characters in "
                "production "
                "(it derives the fresh seeds: a known key lets anyone predict them)"
            )
        return self

    @property
    def effective_database_url(self) -> str:
        """The configured database, or the embedded SQLite file under ``data_dir``."""
        if self.database_url:
            return normalise_database_url(self.database_url)
        return f"sqlite+aiosqlite:///{self.data_dir / 'reprise.sqlite3'}"

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def scratch_dir(self) -> Path:
        return self.data_dir / "scratch"


def normalise_database_url(url: str) -> str:
    """Pick the async driver for a plain URL: postgresql → asyncpg, sqlite → aiosqlite."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+asyncpg://" + url.split("://", 1)[1]
    if url.startswith("sqlite://"):
        return "sqlite+aiosqlite://" + url.split("://", 1)[1]
    return url


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings; tests override by passing their own to ``create_app``."""
    return Settings()
