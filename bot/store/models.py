"""Tables of the bot's store (SQLAlchemy 2.x declarative). Only ``bot/store`` speaks SQL.

- ``channel_settings``: per-channel auto-react switch, threshold and count, whether texts
  are kept to learn from, and the emojis the bot never uses there;
- ``processed_events``: the durable inbox: every accepted platform event, ``pending``
  (payload kept for replay, leased to the worker running it) until its actions are done;
  a platform's retry of a known event id is dropped;
- ``predictions``: every prediction the bot acted on (the feedback the retraining uses);
- ``reaction_events``: human reactions on those messages, user ids as salted hashes;
- ``admin_audit``: every admin action, the user as a salted hash;
- ``retrain_runs``: every retrain: its trigger, progress, candidate and figures;
- ``bot_meta``: small key/values (the writability probe, the model registry's ``current``
  version and its history; never the salt of user hashes).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Boolean, DateTime, Float, Index, Integer, String, Text, UniqueConstraint, false, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


def _now() -> Mapped[dt.datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


class ChannelSettings(Base):
    __tablename__ = "channel_settings"

    platform: Mapped[str] = mapped_column(String(16), primary_key=True)
    channel_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    auto_react: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    threshold: Mapped[float] = mapped_column(Float, nullable=False)
    count: Mapped[int] = mapped_column(Integer, nullable=False)
    # keep the channel's message texts to learn from (off unless an admin turns it on)
    learning: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, server_default=false())
    # emojis the bot never uses in the channel, catalog emojis joined by spaces ("" for none)
    never_emojis: Mapped[str] = mapped_column(Text, nullable=False, default="", server_default="")
    updated_at: Mapped[dt.datetime] = _now()


class ProcessedEvent(Base):
    __tablename__ = "processed_events"
    __table_args__ = (Index("ix_processed_events_pending", "status", "lease_until"),)

    platform: Mapped[str] = mapped_column(String(16), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False, server_default="done")  # pending|done|failed
    payload: Mapped[str | None] = mapped_column(Text, nullable=True)  # the neutral event as JSON, while pending
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    lease_until: Mapped[float] = mapped_column(Float, nullable=False, server_default="0")  # epoch seconds
    created_at: Mapped[dt.datetime] = _now()


class Prediction(Base):
    __tablename__ = "predictions"
    __table_args__ = (UniqueConstraint("platform", "channel_id", "message_id", "kind", name="uq_prediction_message"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    platform: Mapped[str] = mapped_column(String(16), nullable=False)
    channel_id: Mapped[str] = mapped_column(String(64), nullable=False)
    message_id: Mapped[str] = mapped_column(String(128), nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)  # text | picture | command
    text: Mapped[str] = mapped_column(Text, nullable=False)
    model_version: Mapped[str] = mapped_column(String(64), nullable=False)
    emojis: Mapped[list] = mapped_column(JSON, nullable=False)
    scores: Mapped[list] = mapped_column(JSON, nullable=False)
    author_hash: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)  # salted, as user_hash
    created_at: Mapped[dt.datetime] = _now()


class ReactionEvent(Base):
    __tablename__ = "reaction_events"
    __table_args__ = (UniqueConstraint("platform", "event_id", name="uq_reaction_event"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    platform: Mapped[str] = mapped_column(String(16), nullable=False)
    channel_id: Mapped[str] = mapped_column(String(64), nullable=False)
    message_id: Mapped[str] = mapped_column(String(128), nullable=False, index=True)
    emoji: Mapped[str] = mapped_column(String(64), nullable=False)
    added: Mapped[bool] = mapped_column(Boolean, nullable=False)
    user_hash: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    event_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    created_at: Mapped[dt.datetime] = _now()


class AdminAudit(Base):
    __tablename__ = "admin_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    platform: Mapped[str] = mapped_column(String(16), nullable=False)
    channel_id: Mapped[str] = mapped_column(String(64), nullable=False)
    user_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    action: Mapped[str] = mapped_column(String(32), nullable=False)
    detail: Mapped[str] = mapped_column(Text, nullable=False, default="")
    allowed: Mapped[bool] = mapped_column(Boolean, nullable=False)
    created_at: Mapped[dt.datetime] = _now()


class BotMeta(Base):
    __tablename__ = "bot_meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text, nullable=False)


class RetrainRun(Base):
    __tablename__ = "retrain_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    trigger: Mapped[str] = mapped_column(String(32), nullable=False)  # cli | admin | schedule
    status: Mapped[str] = mapped_column(String(16), nullable=False)  # running|promoted|rejected|trained|skipped|failed
    progress: Mapped[str] = mapped_column(Text, nullable=False, default="", server_default="")
    base_version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    candidate_version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    result: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    heartbeat: Mapped[float] = mapped_column(Float, nullable=False, default=0.0, server_default="0")  # epoch s
    started_at: Mapped[dt.datetime] = _now()
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
