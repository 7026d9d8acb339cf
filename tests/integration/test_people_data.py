"""People's data on both databases: `/emojify forget-me` deletes what it says, the admin
export returns exactly what is stored about a person, and the retention purge removes what
is older than the period. The PostgreSQL database outlives runs: every id here is new."""

import uuid

import pytest

from bot.core.bot import AdminPolicy, BotCore
from bot.core.engine import EmojiEngine
from bot.core.events import CommandInvoked, MessageCreated, ReactionChanged
from bot.store.repository import ANONYMOUS, ChannelConfig, Store, migrate, migrate_async

PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


def _id() -> str:
    return uuid.uuid4().hex


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    u = f"sqlite+aiosqlite:///{tmp_path / 'bot.sqlite'}" if request.param == "sqlite" else PG_URL
    migrate(u)
    return u


async def test_forget_me_export_and_retention(url, tmp_path, ranker, catalog):
    store = Store(url, ChannelConfig(True, -1.0, 2, learning=True), salt_file=tmp_path / "salt")
    engine = EmojiEngine(ranker)
    admin, alice, bob, ch = _id(), _id(), _id(), _id()
    core = BotCore(store, engine, catalog=catalog, admins=AdminPolicy(user_ids=frozenset({admin, alice})))
    try:
        m1 = MessageCreated("slack", _id(), ch, _id(), alice, "pizza party in the kitchen")
        m2 = MessageCreated("slack", _id(), ch, _id(), bob, "merry christmas everyone")
        for m in (m1, m2):
            assert await core.handle(m)  # reacted, and logged with its author
        await core.handle(ReactionChanged("slack", _id(), ch, m2.message_id, alice, "🎄", True))
        await core.handle(ReactionChanged("slack", _id(), ch, m1.message_id, bob, "🍕", True))
        await core.handle(CommandInvoked("slack", _id(), ch, alice, "emojify", "snow day"))  # kept: learning is on
        await core.handle(CommandInvoked("slack", _id(), ch, alice, "emojify-admin", "status"))

        (reply,) = await core.handle(CommandInvoked("slack", _id(), ch, admin, "emojify-admin", f"export {alice}"))
        assert reply.ephemeral and "2 messages, 1 reactions, 1 admin commands" in reply.text
        data = await store.export_user("slack", alice)
        assert sorted(r["text"] for r in data["messages"]) == ["pizza party in the kitchen", "snow day"]
        assert [(r["message_id"], r["emoji"]) for r in data["reactions"]] == [(m2.message_id, "🎄")]
        assert [r["action"] for r in data["admin_commands"]] == ["status"]

        (reply,) = await core.handle(CommandInvoked("slack", _id(), ch, alice, "emojify", "forget-me"))
        assert reply.ephemeral
        assert "deleted 2 of your messages and 1 of your reactions; 1 admin-log rows" in reply.text
        assert await store.export_user("slack", alice) == {"messages": [], "reactions": [], "admin_commands": []}
        bob_data = await store.export_user("slack", bob)  # nobody else's data moves
        assert [r["text"] for r in bob_data["messages"]] == ["merry christmas everyone"]
        assert [r["emoji"] for r in bob_data["reactions"]] == ["🍕"]
        audit = [r for r in await store.rows("admin_audit") if r["channel_id"] == ch]
        assert [r["user_hash"] for r in audit if r["action"] == "status"] == [ANONYMOUS]

        assert await store.purge_older_than(30) == {"messages": 0, "reactions": 0}  # all of it is new
        gone = await store.purge_older_than(-1)  # a period that ended a day from now: everything is older
        assert gone["messages"] >= 1 and gone["reactions"] >= 1
        assert await store.export_user("slack", bob) == {"messages": [], "reactions": [], "admin_commands": []}
    finally:
        await engine.close()
        await store.close()


async def test_housekeeping_applies_the_retention_period(tmp_path, ranker, catalog):
    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.sqlite'}"
    await migrate_async(url)
    store = Store(url, ChannelConfig(True, -1.0, 2, learning=True), salt_file=tmp_path / "salt")
    engine = EmojiEngine(ranker)
    try:
        core = BotCore(store, engine, catalog=catalog, retention_days=30)
        await core.handle(MessageCreated("slack", _id(), "C1", _id(), "U1", "pizza party"))
        assert (await core.housekeeping())["messages"] == 0
        core.retention_days = -1  # as if the period had passed
        assert (await core.housekeeping())["messages"] == 1
        assert await store.rows("predictions") == []
    finally:
        await engine.close()
        await store.close()
