"""The repository the core calls: async methods, no SQL anywhere else.

One ``Store`` per process over an async SQLAlchemy engine: ``sqlite+aiosqlite:///file`` by
default, ``postgresql+asyncpg://...`` when several workers share one database (event
dedupe is then a primary-key insert that exactly one worker wins).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from bot.store.models import AdminAudit, BotMeta, ChannelSettings, Prediction, ProcessedEvent, ReactionEvent

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def _alembic_config(url: str):
    from alembic.config import Config

    cfg = Config(str(MIGRATIONS / "alembic.ini"))
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(url: str, revision: str = "head", down: bool = False) -> None:
    """Upgrade (or downgrade) the database at ``url``. Blocking: from async code run it in
    a thread (``await asyncio.to_thread(migrate, url)``), since Alembic runs its own loop."""
    from alembic import command

    if not MIGRATIONS.is_dir():
        raise RuntimeError(f"migrations folder not found at {MIGRATIONS}")
    cfg = _alembic_config(url)
    if down:
        command.downgrade(cfg, revision)
    else:
        command.upgrade(cfg, revision)


async def migrate_async(url: str, revision: str = "head") -> None:
    """:func:`migrate` from async code (in a worker thread: Alembic runs its own loop)."""
    await asyncio.to_thread(migrate, url, revision)


def current_revision(url: str) -> str | None:
    """The revision the database is at (None: not migrated)."""

    async def read() -> str | None:
        from sqlalchemy import text

        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                try:
                    row = (await conn.execute(text("SELECT version_num FROM alembic_version"))).first()
                except Exception:
                    return None
                return row[0] if row else None
        finally:
            await engine.dispose()

    return asyncio.run(read())


@dataclass(frozen=True)
class ChannelConfig:
    auto_react: bool
    threshold: float
    count: int


class Store:
    """Async repository over one database URL."""

    def __init__(self, url: str, default: ChannelConfig, user_salt: str | None = None, echo: bool = False):
        self.url = url
        self.default = default
        self.engine: AsyncEngine = create_async_engine(url, echo=echo, pool_pre_ping=True)
        if url.startswith("sqlite"):
            from sqlalchemy import event

            @event.listens_for(self.engine.sync_engine, "connect")
            def _sqlite_pragmas(dbapi_conn, _record) -> None:
                # WAL: readers never wait for the writer, and a commit is one append, not a
                # rewrite of the journal; NORMAL sync is durable across process crashes.
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
                cur.execute("PRAGMA busy_timeout=5000")
                cur.close()

        self.session = async_sessionmaker(self.engine, expire_on_commit=False)
        self._salt = user_salt.encode() if user_salt else None

    async def close(self) -> None:
        await self.engine.dispose()

    # -- salted user hashes ----------------------------------------------------------------
    async def _salt_bytes(self) -> bytes:
        """The configured salt, else one made on first use and kept in ``bot_meta`` (so
        hashes stay comparable across restarts and workers)."""
        if self._salt is None:
            async with self.session() as s:
                row = await s.get(BotMeta, "user_salt")
                if row is None:
                    s.add(BotMeta(key="user_salt", value=secrets.token_hex(32)))
                    try:
                        await s.commit()
                    except IntegrityError:  # another worker made it first
                        await s.rollback()
                    row = await s.get(BotMeta, "user_salt")
                assert row is not None
                self._salt = row.value.encode()
        return self._salt

    async def user_hash(self, platform: str, user_id: str) -> str:
        return hmac.new(await self._salt_bytes(), f"{platform}:{user_id}".encode(), hashlib.sha256).hexdigest()

    # -- events ----------------------------------------------------------------------------
    async def claim_event(self, platform: str, event_id: str) -> bool:
        """True the first time an event id is seen (by any worker), False for a retry."""
        async with self.session() as s:
            s.add(ProcessedEvent(platform=platform, event_id=event_id))
            try:
                await s.commit()
            except IntegrityError:
                await s.rollback()
                return False
            return True

    # -- channel settings ------------------------------------------------------------------
    async def channel(self, platform: str, channel_id: str) -> ChannelConfig:
        async with self.session() as s:
            row = await s.get(ChannelSettings, (platform, channel_id))
            if row is None:
                return self.default
            return ChannelConfig(row.auto_react, row.threshold, row.count)

    async def update_channel(self, platform: str, channel_id: str, **changes: Any) -> ChannelConfig:
        async with self.session() as s:
            row = await s.get(ChannelSettings, (platform, channel_id))
            if row is None:
                d = self.default
                row = ChannelSettings(
                    platform=platform,
                    channel_id=channel_id,
                    auto_react=d.auto_react,
                    threshold=d.threshold,
                    count=d.count,
                )
                s.add(row)
            for k, v in changes.items():
                setattr(row, k, v)
            row.updated_at = func.now()
            await s.commit()
            return ChannelConfig(row.auto_react, row.threshold, row.count)

    # -- predictions and feedback ----------------------------------------------------------
    async def log_prediction(
        self,
        platform: str,
        channel_id: str,
        message_id: str,
        kind: str,
        text: str,
        model_version: str,
        emojis: list[str],
        scores: list[float],
    ) -> None:
        async with self.session() as s:
            s.add(
                Prediction(
                    platform=platform,
                    channel_id=channel_id,
                    message_id=message_id,
                    kind=kind,
                    text=text,
                    model_version=model_version,
                    emojis=list(emojis),
                    scores=[round(float(x), 6) for x in scores],
                )
            )
            try:
                await s.commit()
            except IntegrityError:  # the same message answered twice (a retry): keep the first
                await s.rollback()

    async def predicted(self, platform: str, channel_id: str, message_id: str) -> bool:
        async with self.session() as s:
            q = (
                select(func.count())
                .select_from(Prediction)
                .where(
                    Prediction.platform == platform,
                    Prediction.channel_id == channel_id,
                    Prediction.message_id == message_id,
                )
            )
            return bool((await s.execute(q)).scalar_one())

    async def log_reaction(
        self, platform: str, channel_id: str, message_id: str, emoji: str, added: bool, user_id: str
    ) -> None:
        user_hash = await self.user_hash(platform, user_id)
        async with self.session() as s:
            s.add(
                ReactionEvent(
                    platform=platform,
                    channel_id=channel_id,
                    message_id=message_id,
                    emoji=emoji,
                    added=added,
                    user_hash=user_hash,
                )
            )
            await s.commit()

    async def audit(
        self, platform: str, channel_id: str, user_id: str, action: str, detail: str, allowed: bool
    ) -> None:
        async with self.session() as s:
            s.add(
                AdminAudit(
                    platform=platform,
                    channel_id=channel_id,
                    user_id=user_id,
                    action=action,
                    detail=detail,
                    allowed=allowed,
                )
            )
            await s.commit()

    async def counts(self) -> dict[str, int]:
        async with self.session() as s:
            out = {}
            for name, table in (
                ("predictions", Prediction),
                ("reactions", ReactionEvent),
                ("admin_actions", AdminAudit),
                ("events", ProcessedEvent),
            ):
                out[name] = int((await s.execute(select(func.count()).select_from(table))).scalar_one())
            return out

    async def rows(self, table: str) -> list[dict[str, Any]]:
        """All rows of one table as dicts (tests, `emojibot` status and exports)."""
        model = {
            "predictions": Prediction,
            "reaction_events": ReactionEvent,
            "admin_audit": AdminAudit,
            "channel_settings": ChannelSettings,
            "processed_events": ProcessedEvent,
        }[table]
        async with self.session() as s:
            result = (await s.execute(select(model))).scalars().all()
            return [{c.name: getattr(r, c.name) for c in model.__table__.columns} for r in result]

    async def forget_events_before(self, cutoff) -> int:
        """Drop dedupe records older than ``cutoff`` (platform retries stop after minutes)."""
        async with self.session() as s:
            res = await s.execute(delete(ProcessedEvent).where(ProcessedEvent.created_at < cutoff))
            await s.commit()
            return int(res.rowcount or 0)
