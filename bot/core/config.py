"""Settings from the environment and an optional ``.env`` (pydantic-settings, prefix ``EMOJIBOT_``).

Secrets are ``SecretStr``: they never show in logs, errors or ``repr``. A malformed value
stops the bot at start with a message naming the setting, never later.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _split(v):
    if isinstance(v, str):
        return [x.strip() for x in v.split(",") if x.strip()]
    return v


class BotSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="EMOJIBOT_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    database_url: str = "sqlite+aiosqlite:///emojibot.sqlite"
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    # Channel defaults (admins change them per channel)
    auto_react: bool = False
    threshold: float = Field(0.2, ge=-1.0, le=1.0)
    reaction_count: int = Field(3, ge=1, le=10)
    # Who is an admin: user ids on any platform, Discord role ids, Discord "Manage Server"
    admin_user_ids: Annotated[list[str], NoDecode] = []
    admin_role_ids: Annotated[list[str], NoDecode] = []
    discord_manage_server_is_admin: bool = True
    user_hash_salt: SecretStr | None = None
    # Platform credentials (all optional: with none, `emojibot serve` runs the web playground)
    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None  # Socket Mode
    discord_token: SecretStr | None = None
    discord_shard_count: int | None = Field(None, ge=1)
    discord_shard_ids: Annotated[list[int], NoDecode] = []
    max_picture_mb: float = Field(10.0, gt=0)

    @field_validator("admin_user_ids", "admin_role_ids", mode="before")
    @classmethod
    def _csv(cls, v):
        return _split(v)

    @field_validator("discord_shard_ids", mode="before")
    @classmethod
    def _ints(cls, v):
        return [int(x) for x in _split(v)] if isinstance(v, str) else v

    @field_validator("database_url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not v.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return v


class SettingsError(RuntimeError):
    """A setting is missing or malformed; the message names it (and never shows a secret)."""


def load_settings(**overrides) -> BotSettings:
    try:
        return BotSettings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(f"EMOJIBOT_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors())
        raise SettingsError(f"bad configuration: {problems}") from None
