"""The repository the core calls: async methods, no SQL anywhere else.

One ``Store`` per process over an async SQLAlchemy engine: ``sqlite+aiosqlite:///file`` by
default, ``postgresql+asyncpg://...`` when several workers share one database (event
dedupe is then a primary-key insert that exactly one worker wins).

The writes of the message path (event claims, prediction logs) go through one writer
task that commits whatever is waiting in one transaction (group commit): each caller
still awaits its own row being committed, but under load one commit serves many
messages, and SQLite never sees two writers fighting over its lock.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, insert, select
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


class _GroupCommit:
    """One writer task; whatever writes are waiting when it is free go in one transaction.

    No timer: a lone write is committed at once, and batches grow only while a commit is
    running, so latency stays one commit at low load and throughput scales under load.
    """

    def __init__(self, store: Store, max_batch: int = 500):
        self.store = store
        self.max_batch = max_batch
        self._queue: asyncio.Queue | None = None
        self._task: asyncio.Task | None = None

    async def submit(self, kind: str, row: dict[str, Any]) -> Any:
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done() or self._task.get_loop() is not loop:
            self._queue = asyncio.Queue()
            self._task = asyncio.create_task(self._run(self._queue), name="store-group-commit")
        assert self._queue is not None
        fut = loop.create_future()
        self._queue.put_nowait((kind, row, fut))
        return await fut

    async def _run(self, queue: asyncio.Queue) -> None:
        stopping = False
        while not stopping:
            batch = [await queue.get()]
            while not queue.empty() and len(batch) < self.max_batch:
                batch.append(queue.get_nowait())
            if None in batch:  # close(): write what is here, then stop
                batch = [b for b in batch if b is not None]
                stopping = True
            if not batch:
                continue
            try:
                results = await self.store._write_batch([(k, r) for k, r, _ in batch])
            except Exception as exc:  # the database is down or refused: every caller hears it
                for _, _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            for (_, _, fut), result in zip(batch, results, strict=True):
                if not fut.done():
                    fut.set_result(result)

    async def close(self) -> None:
        """Commit what is queued and in flight (every waiting caller gets its answer), then
        stop the writer."""
        task, self._task = self._task, None
        if task is None or task.done() or task.get_loop() is not asyncio.get_running_loop():
            return
        assert self._queue is not None
        self._queue.put_nowait(None)
        await task


class Store:
    """Async repository over one database URL."""

    def __init__(
        self,
        url: str,
        default: ChannelConfig,
        user_salt: str | None = None,
        echo: bool = False,
        settings_ttl: float = 5.0,
    ):
        self.url = url
        self.default = default
        # Channel settings are read for every message and change only by admin commands:
        # they are cached for `settings_ttl` seconds (this worker's own changes at once;
        # another worker's within the TTL).
        self.settings_ttl = settings_ttl
        self._channels: dict[tuple[str, str], tuple[float, ChannelConfig]] = {}
        self._writer = _GroupCommit(self)
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
        await self._writer.close()
        await self.engine.dispose()

    def _insert(self, model):
        """INSERT … ON CONFLICT DO NOTHING in this database's dialect."""
        if self.engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        elif self.engine.dialect.name == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        else:  # pragma: no cover - only SQLite and PostgreSQL are supported
            return insert(model)
        return dialect_insert(model).on_conflict_do_nothing()

    async def _write_batch(self, items: list[tuple[str, dict[str, Any]]]) -> list[Any]:
        """One transaction for the claims and prediction logs waiting in the writer.

        Claims: True for the first sight of an event id (here or by any worker), False for
        a repeat, also within the batch. Predictions: a repeat of the same message and kind
        keeps the first row.
        """
        claims: dict[tuple[str, str], None] = {}  # ordered, without repeats
        predictions: list[dict[str, Any]] = []
        for kind, row in items:
            if kind == "claim":
                claims[(row["platform"], row["event_id"])] = None
            else:
                predictions.append(row)
        won: set[tuple[str, str]] = set()
        async with self.session() as s:
            if claims:
                stmt = (
                    self._insert(ProcessedEvent)
                    .values([{"platform": p, "event_id": e} for p, e in claims])
                    .returning(ProcessedEvent.platform, ProcessedEvent.event_id)
                )
                won = {(p, e) for p, e in (await s.execute(stmt)).all()}
            if predictions:
                await s.execute(self._insert(Prediction).values(predictions))
            await s.commit()
        out: list[Any] = []
        first: set[tuple[str, str]] = set()
        for kind, row in items:
            if kind == "claim":
                key = (row["platform"], row["event_id"])
                out.append(key in won and key not in first)
                first.add(key)
            else:
                out.append(None)
        return out

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
        return bool(await self._writer.submit("claim", {"platform": platform, "event_id": event_id}))

    # -- channel settings ------------------------------------------------------------------
    async def channel(self, platform: str, channel_id: str) -> ChannelConfig:
        key = (platform, channel_id)
        cached = self._channels.get(key)
        if cached is not None and time.monotonic() - cached[0] < self.settings_ttl:
            return cached[1]
        async with self.session() as s:
            row = await s.get(ChannelSettings, key)
            cfg = self.default if row is None else ChannelConfig(row.auto_react, row.threshold, row.count)
        self._channels[key] = (time.monotonic(), cfg)
        return cfg

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
            cfg = ChannelConfig(row.auto_react, row.threshold, row.count)
        self._channels[(platform, channel_id)] = (time.monotonic(), cfg)
        return cfg

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
        await self._writer.submit(
            "prediction",
            {
                "platform": platform,
                "channel_id": channel_id,
                "message_id": message_id,
                "kind": kind,
                "text": text,
                "model_version": model_version,
                "emojis": list(emojis),
                "scores": [round(float(x), 6) for x in scores],
            },
        )

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
