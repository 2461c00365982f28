"""Settings both processes share, from environment variables only."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.logs import LogFormat


class CoreSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    database_url: str | None = Field(default=None, description="Postgres URL; unset = embedded Postgres")
    data_dir: Path = Field(default=Path("data"), validation_alias="APPVIEW_DATA_DIR")
    log_format: LogFormat = "auto"
    log_level: str = "info"
