"""Settings from the environment and an optional ``.env`` (pydantic-settings, prefix ``EMOJIBOT_``).

Secrets are ``SecretStr``: they never show in logs, errors or ``repr``. A malformed value
stops the bot at start with a message naming the setting, never later.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from models.reactions import AUTO_REACT_COUNT, AUTO_REACT_THRESHOLD


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
    threshold: float = Field(AUTO_REACT_THRESHOLD, ge=-1.0, le=1.0)
    reaction_count: int = Field(AUTO_REACT_COUNT, ge=1, le=10)
    # Emojis the bot never uses in a channel until an admin changes the channel's list
    # (commas or spaces between them: "😘,💋" or ":kissing_heart: :kiss:")
    never_emojis: str = ""
    # Who is an admin: user ids on any platform, Discord role ids, Discord "Manage Server"
    admin_user_ids: Annotated[list[str], NoDecode] = []
    admin_role_ids: Annotated[list[str], NoDecode] = []
    discord_manage_server_is_admin: bool = True
    user_hash_salt: SecretStr | None = None
    # Where the salt is kept when none is set (mode 0600; never in the database). Default:
    # beside the SQLite file, else ./emojibot-user-salt (workers sharing a PostgreSQL
    # store need the same salt: set EMOJIBOT_USER_HASH_SALT or a shared file).
    user_hash_salt_file: str | None = None
    shutdown_grace_s: float = Field(20.0, ge=0)  # SIGTERM: how long running events may finish
    retention_days: float = Field(30.0, gt=0)  # stored messages and reactions are deleted after this
    # Learning: where retrained model versions are kept (shared by every worker), the
    # training data a retrain mixes in and is gated on, and how often it runs by itself.
    models_dir: str = "emojibot-models"
    data_dir: str | None = None  # e.g. ../shared/data; `/emojify-admin retrain` needs it
    retrain_every_hours: float | None = Field(None, gt=0)  # off unless set
    model_poll_s: float = Field(5.0, gt=0)  # how soon a worker notices a newly promoted version
    # Platform credentials (all optional: with none, `emojibot serve` runs the web playground)
    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None  # Socket Mode
    # The Web API's base URL: Slack's own by default; a proxy of the operator's, or a
    # stand-in on loopback for trying the bot without Slack. Picture downloads with the
    # bot token go to Slack's file hosts and to this origin only.
    slack_api_url: str | None = None
    discord_token: SecretStr | None = None
    discord_shard_count: int | None = Field(None, ge=1)
    discord_shard_ids: Annotated[list[int], NoDecode] = []
    max_picture_mb: float = Field(10.0, gt=0)
    # The web playground: for the machine it runs on (see README "Exposing the bot")
    playground: Literal["auto", "on", "off"] = "auto"  # auto: on unless a Slack/Discord token is set
    playground_secret: SecretStr | None = None  # required to serve it on a non-loopback address
    public_hosts: Annotated[list[str], NoDecode] = []  # Host header values accepted besides loopback names
    playground_messages_per_s: float = Field(1.0, gt=0)  # per client address and per browser
    playground_message_burst: int = Field(10, ge=1)
    playground_reactions_per_s: float = Field(5.0, gt=0)
    playground_reaction_burst: int = Field(20, ge=1)
    playground_new_users_per_min: float = Field(1.0, gt=0)  # new browser ids minted per client address
    playground_new_user_burst: int = Field(5, ge=1)

    @field_validator("admin_user_ids", "admin_role_ids", mode="before")
    @classmethod
    def _csv(cls, v):
        return _split(v)

    @field_validator("public_hosts", mode="before")
    @classmethod
    def _hosts(cls, v):
        return [h.lower() for h in _split(v)] if isinstance(v, str) else v

    @field_validator("playground_secret")
    @classmethod
    def _secret_length(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and len(v.get_secret_value()) < 12:
            raise ValueError("must be at least 12 characters")
        return v

    @field_validator("discord_shard_ids", mode="before")
    @classmethod
    def _ints(cls, v):
        return [int(x) for x in _split(v)] if isinstance(v, str) else v

    @field_validator("slack_api_url")
    @classmethod
    def _api_url(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("https://", "http://127.", "http://localhost", "http://[::1]")):
            raise ValueError("must be an https:// URL (plain http only on loopback)")
        return v if v is None or v.endswith("/") else v + "/"

    @field_validator("database_url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not v.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return v


class SettingsError(RuntimeError):
    """A setting is missing or malformed; the message names it (and never shows a secret)."""


def channel_defaults(settings: BotSettings):
    """A channel's settings until an admin changes them (a ``ChannelConfig``).
    SettingsError for a never-list with something in it that is no emoji, or too long."""
    from bot.store.repository import ChannelConfig

    never: tuple[str, ...] = ()
    if settings.never_emojis.strip():
        from models.catalog import EmojiCatalog
        from models.reactions import never_list

        try:
            never = never_list(EmojiCatalog.load(), settings.never_emojis)
        except ValueError as exc:
            raise SettingsError(f"EMOJIBOT_NEVER_EMOJIS: {exc}") from None
    return ChannelConfig(settings.auto_react, settings.threshold, settings.reaction_count, never=never)


def load_settings(**overrides) -> BotSettings:
    try:
        return BotSettings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(f"EMOJIBOT_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors())
        raise SettingsError(f"bad configuration: {problems}") from None
