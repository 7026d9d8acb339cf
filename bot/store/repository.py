"""The repository the core calls: async methods, no SQL anywhere else.

One ``Store`` per process over an async SQLAlchemy engine: ``sqlite+aiosqlite:///file`` by
default, ``postgresql+asyncpg://...`` when several workers share one database.

Events go through a durable inbox (``processed_events``): :meth:`Store.accept_event`
records an event as ``pending`` with its payload and a lease before the platform is told
it arrived; :meth:`Store.complete_event` marks it done once its actions are done. A retry
of a known event id is dropped, unless its lease ran out (the worker that had it died or
handed it back): then the retry takes it over. Exactly one worker wins each event.

The writes of the message path (accepts, completions, prediction logs) go through one
writer task that commits whatever is waiting in one transaction (group commit): each
caller still awaits its own row being committed, but under load one commit serves many
messages, and SQLite never sees two writers fighting over its lock. A batch the database
refuses is retried row by row, so one bad row fails only its own caller.

Every text is cleaned before it is stored (no NUL, no lone surrogates, cut to the
column): what SQLite takes, PostgreSQL takes too. The engine hides statement parameters
in its errors, so a failure never prints people's messages into the log. A database that
is down, full or read-only raises :class:`StoreUnavailable`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import hmac
import logging
import os
import secrets
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import String, Text, and_, delete, func, insert, or_, select, tuple_, update
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from bot.store.models import (
    AdminAudit,
    BotMeta,
    ChannelSettings,
    Prediction,
    ProcessedEvent,
    ReactionEvent,
    RetrainRun,
)

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"
CURRENT_MODEL_KEY = "model.current"
MODEL_HISTORY_KEY = "model.history"
RETRAIN_LOCK_KEY = 0x656D6F6A  # the PostgreSQL advisory lock of `emojibot retrain` ("emoj")
TEXT_LIMIT = 4_000  # characters kept of any free text (the ranker reads 2,000)
log = logging.getLogger("emojibot.store")


class StoreUnavailable(RuntimeError):
    """The database cannot be reached or written (down, disk full, read-only file)."""


@contextlib.contextmanager
def _db_errors(what: str) -> Iterator[None]:
    """Faults of the database itself become :class:`StoreUnavailable`; a row the database
    refuses (a constraint, a bad value) stays what it is: only its caller hears of it."""
    try:
        yield
    except StoreUnavailable:
        raise
    except (OperationalError, InterfaceError, PoolTimeoutError, OSError, ConnectionError, TimeoutError) as exc:
        raise StoreUnavailable(f"the database is unavailable ({what}): {_first_line(exc)}") from exc
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise StoreUnavailable(f"the database connection was lost ({what})") from exc
        raise


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()
    return (text[0] if text else type(orig).__name__)[:200]


def clean_text(value: Any, limit: int | None = TEXT_LIMIT) -> str:
    """Text every supported database stores as given: NUL characters dropped, lone
    surrogates (which UTF-8 cannot encode) replaced, at most ``limit`` characters."""
    s = str(value).replace("\x00", "")
    s = s.encode("utf-8", "replace").decode("utf-8")
    return s[:limit] if limit else s


_ID_COLUMNS = {"platform", "channel_id", "event_id", "message_id"}


def fit_id(value: Any, length: int) -> str:
    """An identifier as stored: cleaned, and when longer than its column, cut with a digest
    of the whole appended, so two long ids never become one and every lookup of the same id
    (accept, complete, release) finds the same row."""
    s = clean_text(value, None)
    if len(s) <= length:
        return s
    return s[: length - 17] + "~" + hashlib.sha256(s.encode("utf-8")).hexdigest()[:16]


def _abandoned(now: float):
    """A pending event's condition of being an abandoned claim: no payload to replay, and no
    worker's lease on it."""
    return and_(ProcessedEvent.payload.is_(None), ProcessedEvent.lease_until < now)


def _fit(model, row: dict[str, Any]) -> dict[str, Any]:
    """``row`` with every string cleaned and cut to its column's length (identifiers with a
    digest: :func:`fit_id`)."""
    out = dict(row)
    for col in model.__table__.columns:
        v = out.get(col.name)
        if isinstance(v, str):
            if isinstance(col.type, String) and not isinstance(col.type, Text) and col.type.length:
                n = col.type.length
                out[col.name] = fit_id(v, n) if col.name in _ID_COLUMNS else clean_text(v, n)
            else:
                out[col.name] = clean_text(v, TEXT_LIMIT if col.name != "payload" else None)
    return out


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


def sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite+aiosqlite:///file`` URL (None for memory or another database)."""
    if not url.startswith("sqlite"):
        return None
    path = url.split(":///", 1)[1] if ":///" in url else ""
    path = path.split("?", 1)[0].removeprefix("file:")  # `file:` URIs (`?mode=ro&uri=true`) too
    return Path(path) if path and path != ":memory:" else None


def default_salt_file(url: str) -> Path:
    """Where the salt of user hashes is kept when none is configured: beside a SQLite file,
    else ``emojibot-user-salt`` in the working directory."""
    db = sqlite_path(url)
    return db.with_name(db.name + ".salt") if db is not None else Path("emojibot-user-salt")


ANONYMOUS = "anonymous"  # the user_hash of an admin-log row whose person asked to be forgotten


@dataclass(frozen=True)
class ChannelConfig:
    auto_react: bool
    threshold: float
    count: int
    learning: bool = False  # keep message texts to learn from
    never: tuple[str, ...] = ()  # catalog emojis the bot never uses in the channel


@dataclass(frozen=True)
class DueEvent:
    platform: str
    event_id: str
    payload: str
    attempts: int


class _GroupCommit:
    """One writer task; whatever writes are waiting when it is free go in one transaction.

    No timer: a lone write is committed at once, and batches grow only while a commit is
    running, so latency stays one commit at low load and throughput scales under load.
    A batch the database refuses is retried row by row: a poisoned row fails alone.
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
            if batch:
                await self._commit(batch)

    async def _commit(self, batch: list) -> None:
        try:
            results = await self.store._write_batch([(k, r) for k, r, _ in batch])
        except StoreUnavailable as exc:  # the database is down: every caller hears it
            for _, _, fut in batch:
                if not fut.done():
                    fut.set_exception(exc)
            return
        except Exception as exc:
            if len(batch) == 1:
                if not batch[0][2].done():
                    batch[0][2].set_exception(exc)
                return
            for item in batch:  # one row was refused: find it, commit the others
                await self._commit([item])
            return
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
        salt_file: str | os.PathLike | None = None,
    ):
        self.url = url
        self.default = default
        # Channel settings are read for every message and change only by admin commands:
        # they are cached for `settings_ttl` seconds (this worker's own changes at once;
        # another worker's within the TTL).
        self.settings_ttl = settings_ttl
        self._channels: dict[tuple[str, str], tuple[float, ChannelConfig]] = {}
        self._writer = _GroupCommit(self)
        connect_args: dict[str, Any] = {}
        if url.startswith("postgresql"):
            connect_args = {"timeout": 5, "command_timeout": 15}  # a dead server fails fast
        self.engine: AsyncEngine = create_async_engine(
            url, echo=echo, pool_pre_ping=True, hide_parameters=True, connect_args=connect_args
        )
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
        self.salt_file = Path(salt_file) if salt_file else default_salt_file(url)

    async def close(self) -> None:
        await self._writer.close()
        await self.engine.dispose()

    def _insert(self, model):
        """INSERT … ON CONFLICT DO NOTHING in this database's dialect."""
        return self._dialect_insert(model).on_conflict_do_nothing()

    def _dialect_insert(self, model):
        if self.engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        elif self.engine.dialect.name == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        else:  # pragma: no cover - only SQLite and PostgreSQL are supported
            return insert(model)
        return dialect_insert(model)

    async def check_writable(self) -> None:
        """Write (and commit) one row: raises :class:`StoreUnavailable` when the database is
        unreachable, full or read-only."""
        with _db_errors("writing a probe row"):
            async with self.session() as s:
                stmt = self._dialect_insert(BotMeta).values(key="writable_probe", value=repr(time.time()))
                await s.execute(stmt.on_conflict_do_update(index_elements=["key"], set_={"value": stmt.excluded.value}))
                await s.commit()

    async def _write_batch(self, items: list[tuple[str, dict[str, Any]]]) -> list[Any]:
        """One transaction for the accepts, completions and prediction logs waiting.

        Accepts: True for the first sight of an event id (here or by any worker) or the
        takeover of a pending event whose lease ran out; False otherwise, also for a
        repeat within the batch. Predictions: a repeat of the same message and kind keeps
        the first row.
        """
        now = time.time()
        models = {"accept": ProcessedEvent, "complete": ProcessedEvent, "prediction": Prediction}
        items = [(kind, _fit(models[kind], row)) for kind, row in items]  # ids as stored, everywhere
        accepts: dict[tuple[str, str], dict[str, Any]] = {}  # ordered, without repeats
        predictions: list[dict[str, Any]] = []
        completions: list[dict[str, Any]] = []
        for kind, row in items:
            if kind == "accept":
                accepts.setdefault((row["platform"], row["event_id"]), row)
            elif kind == "complete":
                completions.append(row)
            else:
                predictions.append(row)
        won: set[tuple[str, str]] = set()
        with _db_errors("writing events"):
            async with self.session() as s:
                if accepts:
                    values = [
                        {
                            "platform": p,
                            "event_id": e,
                            "status": "pending",
                            "payload": r.get("payload"),
                            "lease_until": now + r["lease"],
                        }
                        for (p, e), r in accepts.items()
                    ]
                    stmt = (
                        self._insert(ProcessedEvent)
                        .values(values)
                        .returning(ProcessedEvent.platform, ProcessedEvent.event_id)
                    )
                    won = {(p, e) for p, e in (await s.execute(stmt)).all()}
                    for v in values:  # known ids: a pending event nobody holds is taken over
                        key = (v["platform"], v["event_id"])
                        if key in won:
                            continue
                        res = await s.execute(
                            update(ProcessedEvent)
                            .where(
                                ProcessedEvent.platform == key[0],
                                ProcessedEvent.event_id == key[1],
                                ProcessedEvent.status == "pending",
                                ProcessedEvent.lease_until < now,
                            )
                            .values(lease_until=v["lease_until"], attempts=ProcessedEvent.attempts + 1)
                        )
                        if res.rowcount:
                            won.add(key)
                if predictions:
                    await s.execute(self._insert(Prediction).values(predictions))
                for status in sorted({c["status"] for c in completions}):  # one statement per status
                    keys = [(c["platform"], c["event_id"]) for c in completions if c["status"] == status]
                    await s.execute(
                        update(ProcessedEvent)
                        .where(tuple_(ProcessedEvent.platform, ProcessedEvent.event_id).in_(keys))
                        .values(status=status, payload=None, lease_until=0.0)
                    )
                await s.commit()
        out: list[Any] = []
        first: set[tuple[str, str]] = set()
        for kind, row in items:
            if kind == "accept":
                key = (row["platform"], row["event_id"])
                out.append(key in won and key not in first)
                first.add(key)
            else:
                out.append(None)
        return out

    # -- salted user hashes ----------------------------------------------------------------
    async def _salt_bytes(self) -> bytes:
        """The configured salt, else the one in :attr:`salt_file` (made once, mode 0600),
        never one in the database: a copy of the database alone cannot re-identify anyone.
        A salt that revision 0001 kept in ``bot_meta`` is moved to the file."""
        if self._salt is None:
            path = self.salt_file
            if not path.exists():
                legacy = None
                with _db_errors("reading the old salt"):
                    async with self.session() as s:
                        row = await s.get(BotMeta, "user_salt")
                        legacy = row.value if row is not None else None
                _write_secret_file(path, legacy or secrets.token_hex(32))
                if legacy is not None:
                    with _db_errors("moving the salt out of the database"):
                        async with self.session() as s:
                            await s.execute(delete(BotMeta).where(BotMeta.key == "user_salt"))
                            await s.commit()
            for _ in range(50):  # another worker may be writing the file it just made
                salt = path.read_text(encoding="utf-8").strip()
                if salt:
                    break
                await asyncio.sleep(0.02)
            if not salt:
                raise StoreUnavailable(f"the salt file {path} is empty: delete it or set EMOJIBOT_USER_HASH_SALT")
            self._salt = salt.encode()
        return self._salt

    async def user_hash(self, platform: str, user_id: str) -> str:
        return hmac.new(await self._salt_bytes(), f"{platform}:{user_id}".encode(), hashlib.sha256).hexdigest()

    # -- the event inbox -------------------------------------------------------------------
    async def accept_event(
        self, platform: str, event_id: str, payload: str | None = None, lease: float = 120.0
    ) -> bool:
        """Record an event as pending (with ``payload`` for a replay), leased to this worker
        for ``lease`` seconds. True: it is this worker's to run; False: a duplicate (done,
        or pending under another live lease)."""
        row = {"platform": platform, "event_id": event_id, "payload": payload, "lease": lease}
        return bool(await self._writer.submit("accept", row))

    async def claim_event(self, platform: str, event_id: str) -> bool:
        """:meth:`accept_event` without a payload (nothing to replay)."""
        return await self.accept_event(platform, event_id)

    async def complete_event(self, platform: str, event_id: str, failed: bool = False) -> None:
        """The event's actions are done (or it failed for good): drop its payload."""
        row = {"platform": platform, "event_id": event_id, "status": "failed" if failed else "done"}
        await self._writer.submit("complete", row)

    async def release_event(self, platform: str, event_id: str, retry_in: float = 0.0) -> None:
        """Hand a pending event back: any worker (a replay, or the platform's retry) may
        take it after ``retry_in`` seconds."""
        await self._set_lease(platform, event_id, retry_in, "releasing an event")

    async def extend_lease(self, platform: str, event_id: str, lease: float) -> None:
        """Keep holding a pending event this worker is still running."""
        await self._set_lease(platform, event_id, lease, "extending a lease")

    async def _set_lease(self, platform: str, event_id: str, seconds: float, what: str) -> None:
        key = _fit(ProcessedEvent, {"platform": platform, "event_id": event_id})
        with _db_errors(what):
            async with self.session() as s:
                await s.execute(
                    update(ProcessedEvent)
                    .where(
                        ProcessedEvent.platform == key["platform"],
                        ProcessedEvent.event_id == key["event_id"],
                        ProcessedEvent.status == "pending",
                    )
                    .values(lease_until=time.time() + seconds)
                )
                await s.commit()

    async def take_due_events(self, platforms: list[str], limit: int = 50, lease: float = 120.0) -> list[DueEvent]:
        """Pending events of ``platforms`` whose lease ran out, each leased to this worker
        (another worker asking at the same moment gets the others)."""
        now = time.time()
        taken: list[DueEvent] = []
        with _db_errors("reading pending events"):
            async with self.session() as s:
                rows = (
                    await s.execute(
                        select(
                            ProcessedEvent.platform,
                            ProcessedEvent.event_id,
                            ProcessedEvent.payload,
                            ProcessedEvent.attempts,
                        )
                        .where(
                            ProcessedEvent.status == "pending",
                            ProcessedEvent.lease_until < now,
                            ProcessedEvent.platform.in_(platforms),
                            ProcessedEvent.payload.is_not(None),
                        )
                        .order_by(ProcessedEvent.lease_until)
                        .limit(limit)
                    )
                ).all()
                for platform, event_id, payload, attempts in rows:
                    res = await s.execute(
                        update(ProcessedEvent)
                        .where(
                            ProcessedEvent.platform == platform,
                            ProcessedEvent.event_id == event_id,
                            ProcessedEvent.status == "pending",
                            ProcessedEvent.lease_until < now,
                        )
                        .values(lease_until=now + lease, attempts=ProcessedEvent.attempts + 1)
                    )
                    if res.rowcount:
                        taken.append(DueEvent(platform, event_id, payload, attempts + 1))
                await s.commit()
        return taken

    async def pending_events(self) -> int:
        """Events not yet done that will be: with a payload to run or rerun, or held by a
        live lease. A claim without a payload whose lease ran out (its worker died, or the
        store failed as it would have been marked done) has nothing to replay: it is not
        counted, and retention deletes it (:meth:`forget_events_older_than`)."""
        with _db_errors("counting pending events"):
            async with self.session() as s:
                q = (
                    select(func.count())
                    .select_from(ProcessedEvent)
                    .where(ProcessedEvent.status == "pending", ~_abandoned(time.time()))
                )
                return int((await s.execute(q)).scalar_one())

    # -- channel settings ------------------------------------------------------------------
    async def channel(self, platform: str, channel_id: str) -> ChannelConfig:
        fitted = _fit(ChannelSettings, {"platform": platform, "channel_id": channel_id})
        key = (fitted["platform"], fitted["channel_id"])
        cached = self._channels.get(key)
        if cached is not None and time.monotonic() - cached[0] < self.settings_ttl:
            return cached[1]
        with _db_errors("reading channel settings"):
            async with self.session() as s:
                row = await s.get(ChannelSettings, key)
                cfg = self.default if row is None else _config(row)
        self._channels[key] = (time.monotonic(), cfg)
        return cfg

    async def update_channel(self, platform: str, channel_id: str, **changes: Any) -> ChannelConfig:
        """Set some of a channel's settings (``never`` a whole never-list, last writer
        wins; to add to it or take from it, :meth:`change_never`)."""
        fitted = _fit(ChannelSettings, {"platform": platform, "channel_id": channel_id})
        platform, channel_id = fitted["platform"], fitted["channel_id"]
        with _db_errors("changing channel settings"):
            async with self.session() as s:
                await s.execute(self._insert(ChannelSettings).values(self._default_row(platform, channel_id)))
                values = {("never_emojis" if k == "never" else k): v for k, v in changes.items()}
                if "never_emojis" in values:
                    values["never_emojis"] = " ".join(values["never_emojis"])
                where = _channel_key(platform, channel_id)
                await s.execute(update(ChannelSettings).where(*where).values(**values, updated_at=func.now()))
                await s.commit()
                cfg = await self._read_channel(s, platform, channel_id)
        self._channels[(platform, channel_id)] = (time.monotonic(), cfg)
        return cfg

    async def change_never(
        self,
        platform: str,
        channel_id: str,
        add: Sequence[str] = (),
        remove: Sequence[str] = (),
        limit: int | None = None,
    ) -> ChannelConfig:
        """Add emojis to a channel's never-list and take others out, from the list as
        stored (not as cached): the new list is written only over the one it was computed
        from (compare and swap; a channel without a settings row gets one from the
        defaults by INSERT … ON CONFLICT DO NOTHING) and computed again if another change
        landed first, so two admins' changes, on one worker or two, never undo each
        other. ValueError, nothing written, when the list would hold more than ``limit``;
        nothing written either when the list would not change."""
        fitted = _fit(ChannelSettings, {"platform": platform, "channel_id": channel_id})
        platform, channel_id = fitted["platform"], fitted["channel_id"]
        key = _channel_key(platform, channel_id)
        with _db_errors("changing a never-list"):
            async with self.session() as s:
                for _ in range(100):  # each round loses only to a change that landed
                    old = (await s.execute(select(ChannelSettings.never_emojis).where(*key))).scalar_one_or_none()
                    await s.commit()
                    was = (old if old is not None else " ".join(self.default.never)).split()
                    now = was + [e for e in dict.fromkeys(add) if e not in was]
                    now = [e for e in now if e not in set(remove)]
                    if limit is not None and len(now) > limit:
                        raise ValueError(f"a never-list holds at most {limit} emojis")
                    if now == was:
                        break
                    if old is None:
                        row = self._default_row(platform, channel_id) | {"never_emojis": " ".join(now)}
                        done = await s.execute(self._insert(ChannelSettings).values(row))
                    else:
                        swap = update(ChannelSettings).where(*key, ChannelSettings.never_emojis == old)
                        done = await s.execute(swap.values(never_emojis=" ".join(now), updated_at=func.now()))
                    await s.commit()
                    if done.rowcount == 1:
                        break
                else:
                    raise StoreUnavailable("the never-list kept changing under this change")
                cfg = await self._read_channel(s, platform, channel_id)
        self._channels[(platform, channel_id)] = (time.monotonic(), cfg)
        return cfg

    def _default_row(self, platform: str, channel_id: str) -> dict[str, Any]:
        """A channel's settings row as the defaults make it."""
        d = self.default
        return {
            "platform": platform,
            "channel_id": channel_id,
            "auto_react": d.auto_react,
            "threshold": d.threshold,
            "count": d.count,
            "learning": d.learning,
            "never_emojis": " ".join(d.never),
        }

    async def _read_channel(self, s, platform: str, channel_id: str) -> ChannelConfig:
        """A channel's settings as stored now (the defaults where it has no row)."""
        row = await s.get(ChannelSettings, (platform, channel_id), populate_existing=True)
        return self.default if row is None else _config(row)

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
        author_id: str | None = None,
    ) -> None:
        """A message (or /emojify text) and what the bot answered; ``author_id`` is kept only
        as a salted hash, so that the author can have it deleted or exported."""
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
                "author_hash": await self.user_hash(platform, author_id) if author_id is not None else None,
            },
        )

    async def predicted(self, platform: str, channel_id: str, message_id: str) -> bool:
        row = _fit(Prediction, {"platform": platform, "channel_id": channel_id, "message_id": message_id})
        with _db_errors("reading predictions"):
            async with self.session() as s:
                q = (
                    select(func.count())
                    .select_from(Prediction)
                    .where(
                        Prediction.platform == row["platform"],
                        Prediction.channel_id == row["channel_id"],
                        Prediction.message_id == row["message_id"],
                    )
                )
                return bool((await s.execute(q)).scalar_one())

    async def log_reaction(
        self,
        platform: str,
        channel_id: str,
        message_id: str,
        emoji: str,
        added: bool,
        user_id: str,
        event_id: str | None = None,
    ) -> None:
        """One person's reaction; a replay of the same event (``event_id``) is logged once."""
        user_hash = await self.user_hash(platform, user_id)
        row = {
            "platform": platform,
            "channel_id": channel_id,
            "message_id": message_id,
            "emoji": emoji,
            "added": added,
            "user_hash": user_hash,
            "event_id": event_id,
        }
        with _db_errors("logging a reaction"):
            async with self.session() as s:
                await s.execute(self._insert(ReactionEvent).values(_fit(ReactionEvent, row)))
                await s.commit()

    async def audit(
        self, platform: str, channel_id: str, user_id: str, action: str, detail: str, allowed: bool
    ) -> None:
        """An admin command, with the user as a salted hash (never the raw id)."""
        row = {
            "platform": platform,
            "channel_id": channel_id,
            "user_hash": await self.user_hash(platform, user_id),
            "action": action,
            "detail": detail,
            "allowed": allowed,
        }
        with _db_errors("writing the audit log"):
            async with self.session() as s:
                s.add(AdminAudit(**_fit(AdminAudit, row)))
                await s.commit()

    async def counts(self) -> dict[str, int]:
        with _db_errors("counting rows"):
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
            "retrain_runs": RetrainRun,
        }[table]
        with _db_errors(f"reading {table}"):
            async with self.session() as s:
                result = (await s.execute(select(model))).scalars().all()
                return [{c.name: getattr(r, c.name) for c in model.__table__.columns} for r in result]

    # -- people's data ----------------------------------------------------------------------
    async def forget_user(self, platform: str, user_id: str) -> dict[str, int]:
        """Delete what is stored about one person: the messages they wrote (and /emojify
        texts they sent) and their reactions; their admin-log rows stay, as anonymous.
        Returns how many rows each step touched."""
        h = await self.user_hash(platform, user_id)
        with _db_errors("forgetting a user"):
            async with self.session() as s:
                msgs = await s.execute(delete(Prediction).where(Prediction.author_hash == h))
                reacts = await s.execute(delete(ReactionEvent).where(ReactionEvent.user_hash == h))
                audit = await s.execute(update(AdminAudit).where(AdminAudit.user_hash == h).values(user_hash=ANONYMOUS))
                await s.commit()
        return {
            "messages": int(msgs.rowcount or 0),
            "reactions": int(reacts.rowcount or 0),
            "audit_rows_anonymised": int(audit.rowcount or 0),
        }

    async def export_user(self, platform: str, user_id: str) -> dict[str, list[dict[str, Any]]]:
        """Everything stored about one person, as plain rows (times in ISO 8601)."""
        h = await self.user_hash(platform, user_id)
        out: dict[str, list[dict[str, Any]]] = {}
        with _db_errors("exporting a user's data"):
            async with self.session() as s:
                for name, model, col, fields in (
                    ("messages", Prediction, Prediction.author_hash,
                     ("channel_id", "message_id", "kind", "text", "emojis", "model_version", "created_at")),
                    ("reactions", ReactionEvent, ReactionEvent.user_hash,
                     ("channel_id", "message_id", "emoji", "added", "created_at")),
                    ("admin_commands", AdminAudit, AdminAudit.user_hash,
                     ("channel_id", "action", "detail", "allowed", "created_at")),
                ):  # fmt: skip
                    rows = (await s.execute(select(model).where(col == h).order_by(model.id))).scalars().all()
                    out[name] = [
                        {f: (v.isoformat() if hasattr(v, "isoformat") else v) for f in fields for v in [getattr(r, f)]}
                        for r in rows
                    ]
        return out

    def _ago(self, days: float):
        """The time ``days`` ago, as this database compares it (SQLite keeps naive UTC text)."""
        t = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
        return t.replace(tzinfo=None) if self.engine.dialect.name == "sqlite" else t

    async def purge_older_than(self, days: float) -> dict[str, int]:
        """The retention period: delete stored messages and reactions older than ``days``."""
        cutoff = self._ago(days)
        with _db_errors("purging old data"):
            async with self.session() as s:
                msgs = await s.execute(delete(Prediction).where(Prediction.created_at < cutoff))
                reacts = await s.execute(delete(ReactionEvent).where(ReactionEvent.created_at < cutoff))
                await s.commit()
        return {"messages": int(msgs.rowcount or 0), "reactions": int(reacts.rowcount or 0)}

    async def forget_events_older_than(self, days: float) -> int:
        """Drop finished dedupe records older than ``days`` (platform retries stop after
        minutes), and abandoned claims as old (pending without a payload, their lease run
        out: nothing can run them); pending events are kept until they are done."""
        cutoff = self._ago(days)
        with _db_errors("forgetting old events"):
            async with self.session() as s:
                res = await s.execute(
                    delete(ProcessedEvent).where(
                        ProcessedEvent.created_at < cutoff,
                        or_(ProcessedEvent.status != "pending", _abandoned(time.time())),
                    )
                )
                await s.commit()
                return int(res.rowcount or 0)

    # -- learning: the feedback export, retrain runs, the current model ---------------------
    async def export_feedback(self) -> dict[str, list[dict[str, Any]]]:
        """What retraining learns from, as plain rows (times in epoch seconds): every stored
        message text (channels with learning on) with the bot's suggestions and its author's
        hash, and every reaction logged on those messages. People appear only as salted
        hashes; ``training.feedback`` turns this into triplets. An ``/emojify`` answer is
        not among them: it is seen by its caller alone and nobody can react to it, so its
        five emojis would all read, a day later, as suggestions nobody endorsed."""
        with _db_errors("exporting feedback"):
            async with self.session() as s:
                reactable = (Prediction.text != "", Prediction.kind != "command")
                msgs = (await s.execute(select(Prediction).where(*reactable).order_by(Prediction.id))).scalars()
                messages = [
                    {
                        "key": f"{m.platform}/{m.channel_id}/{m.message_id}",
                        "text": m.text,
                        "suggested": list(m.emojis or []),
                        "author": m.author_hash,
                        "time": _epoch(m.created_at),
                    }
                    for m in msgs
                ]
                rows = (await s.execute(select(ReactionEvent).order_by(ReactionEvent.id))).scalars()
                reactions = [
                    {
                        "key": f"{r.platform}/{r.channel_id}/{r.message_id}",
                        "emoji": r.emoji,
                        "added": bool(r.added),
                        "user": r.user_hash,
                        "time": _epoch(r.created_at),
                        "order": r.id,
                    }
                    for r in rows
                ]
        return {"messages": messages, "reactions": reactions}

    async def meta(self, key: str) -> str | None:
        with _db_errors("reading bot_meta"):
            async with self.session() as s:
                row = await s.get(BotMeta, key)
                return row.value if row is not None else None

    async def current_model(self) -> str | None:
        """The version every worker answers with (None: the one shipped in the package)."""
        return await self.meta(CURRENT_MODEL_KEY)

    async def model_history(self) -> list[str]:
        """Versions that were current, oldest first (the last is the current one)."""
        import json

        raw = await self.meta(MODEL_HISTORY_KEY)
        return list(json.loads(raw)) if raw else []

    async def set_current_model(self, version: str) -> None:
        """Point every worker at ``version`` (they switch within their poll interval)."""
        await self._point_at(version)

    async def replace_current_model(self, expected: str | None, version: str) -> bool:
        """Point every worker at ``version`` only if the current version is still
        ``expected`` (None: the shipped one), in one statement; False (nothing changed)
        where an admin promoted or rolled back meanwhile: a retrain's candidate was gated
        against ``expected``, not against what is current now."""
        return await self._point_at(version, expected)

    async def _point_at(self, version: str, expected: Any = ...) -> bool:
        """Move the pointer to ``version`` (over ``expected`` only, unless it is ``...``)
        and append it to the history, in one transaction; False where ``expected`` no
        longer holds."""
        import json

        def upsert(key: str, value: str):
            stmt = self._dialect_insert(BotMeta).values(key=key, value=value)
            return stmt.on_conflict_do_update(index_elements=["key"], set_={"value": stmt.excluded.value})

        with _db_errors("setting the current model"):
            async with self.session() as s:
                if expected is ...:
                    moved = (await s.execute(upsert(CURRENT_MODEL_KEY, version))).rowcount
                elif expected is None:  # no row: the shipped version; the first writer inserts it
                    stmt = self._dialect_insert(BotMeta).values(key=CURRENT_MODEL_KEY, value=version)
                    moved = (await s.execute(stmt.on_conflict_do_nothing(index_elements=["key"]))).rowcount
                else:
                    where = (BotMeta.key == CURRENT_MODEL_KEY, BotMeta.value == expected)
                    moved = (await s.execute(update(BotMeta).where(*where).values(value=version))).rowcount
                if not moved:
                    await s.rollback()
                    return False
                row = await s.get(BotMeta, MODEL_HISTORY_KEY)
                history = list(json.loads(row.value)) if row is not None and row.value else []
                if not history or history[-1] != version:
                    history = (history + [version])[-50:]
                await s.execute(upsert(MODEL_HISTORY_KEY, json.dumps(history)))
                await s.commit()
        return True

    async def pop_current_model(self) -> tuple[str | None, str | None]:
        """Rollback: drop the current version from the history; returns (left, now current),
        now current None meaning the shipped one."""
        import json

        history = await self.model_history()
        left = history.pop() if history else None
        now = history[-1] if history else None
        with _db_errors("rolling back the current model"):
            async with self.session() as s:
                await s.execute(delete(BotMeta).where(BotMeta.key.in_([CURRENT_MODEL_KEY, MODEL_HISTORY_KEY])))
                if now is not None:
                    s.add(BotMeta(key=CURRENT_MODEL_KEY, value=now))
                s.add(BotMeta(key=MODEL_HISTORY_KEY, value=json.dumps(history)))
                await s.commit()
        return left, now

    @contextlib.asynccontextmanager
    async def retrain_lock(self):
        """Held by the one retrain running for this store; yields False when another holds
        it. PostgreSQL: a session advisory lock (workers on several hosts); SQLite: an
        exclusive lock on a file beside the database (one host)."""
        if self.engine.dialect.name == "postgresql":
            from sqlalchemy import text as sql

            with _db_errors("taking the retrain lock"):
                conn = await self.engine.connect()
            try:
                got = bool(await conn.scalar(sql("SELECT pg_try_advisory_lock(:k)"), {"k": RETRAIN_LOCK_KEY}))
                try:
                    yield got
                finally:
                    if got:
                        with contextlib.suppress(Exception):
                            await conn.scalar(sql("SELECT pg_advisory_unlock(:k)"), {"k": RETRAIN_LOCK_KEY})
            finally:
                await conn.close()
            return
        import fcntl

        path = sqlite_path(self.url)
        lock_path = Path(f"{path}.retrain.lock") if path else Path("emojibot.retrain.lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                got = True
            except BlockingIOError:
                got = False
            try:
                yield got
            finally:
                if got:
                    fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    async def start_run(self, trigger: str, base_version: str | None) -> int:
        with _db_errors("recording a retrain"):
            async with self.session() as s:
                run = RetrainRun(
                    trigger=trigger[:32], status="running", progress="starting", base_version=base_version,
                    heartbeat=time.time(),
                )  # fmt: skip
                s.add(run)
                await s.commit()
                return int(run.id)

    async def update_run(self, run_id: int, **changes: Any) -> None:
        """Progress (``progress``), the candidate, and at the end ``status`` and ``result``."""
        changes = dict(changes)
        changes["heartbeat"] = time.time()
        if changes.get("status", "running") != "running":
            changes["finished_at"] = func.now()
        if "progress" in changes:
            changes["progress"] = clean_text(changes["progress"], 500)
        with _db_errors("updating a retrain"):
            async with self.session() as s:
                await s.execute(update(RetrainRun).where(RetrainRun.id == run_id).values(**changes))
                await s.commit()

    async def runs(self, limit: int = 20) -> list[dict[str, Any]]:
        """The latest retrains, newest first."""
        with _db_errors("reading retrains"):
            async with self.session() as s:
                rows = (await s.execute(select(RetrainRun).order_by(RetrainRun.id.desc()).limit(limit))).scalars()
                return [{c.name: getattr(r, c.name) for c in RetrainRun.__table__.columns} for r in rows]


def _channel_key(platform: str, channel_id: str) -> tuple:
    return (ChannelSettings.platform == platform, ChannelSettings.channel_id == channel_id)


def _config(row: ChannelSettings) -> ChannelConfig:
    return ChannelConfig(row.auto_react, row.threshold, row.count, row.learning, tuple(row.never_emojis.split()))


def _epoch(t: dt.datetime | None) -> float:
    """A stored time as epoch seconds (SQLite hands back naive UTC)."""
    if t is None:
        return 0.0
    return (t if t.tzinfo else t.replace(tzinfo=dt.UTC)).timestamp()


def _write_secret_file(path: Path, value: str) -> None:
    """Create ``path`` with mode 0600 holding ``value``; if another worker made it first, keep theirs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(value + "\n")
