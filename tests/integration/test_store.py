"""The store under concurrency, on SQLite files and on the PostgreSQL server: group-committed
claims and prediction logs lose nothing and double nothing; settings reads are cached."""

import asyncio
import uuid

import pytest

from bot.store.repository import ChannelConfig, Store, StoreUnavailable, migrate, migrate_async

PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
DEFAULT = ChannelConfig(auto_react=True, threshold=0.1, count=3)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    u = f"sqlite+aiosqlite:///{tmp_path / 's.sqlite'}" if request.param == "sqlite" else PG_URL
    migrate(u)
    return u


async def test_concurrent_claims_and_predictions_are_each_written_once(url):
    store = Store(url, DEFAULT)
    run = uuid.uuid4().hex[:8]  # the PostgreSQL database outlives the test: own ids
    try:
        events = [f"{run}-E{i}" for i in range(150)]
        # every event arrives twice (a platform retry), all at once
        claims = await asyncio.gather(*(store.claim_event("slack", e) for e in events + events))
        first, second = claims[: len(events)], claims[len(events) :]
        assert [a or b for a, b in zip(first, second, strict=True)] == [True] * len(events)
        assert sum(claims) == len(events)

        async def log(i: int) -> None:
            await store.log_prediction(
                "slack", f"C{run}", f"{i}.0", "text", f"message {i}", "v1", ["🎉", "😂"], [0.5, 0.25]
            )

        await asyncio.gather(*(log(i) for i in range(120)), *(log(i) for i in range(0, 120, 3)))
        rows = [r for r in await store.rows("predictions") if r["channel_id"] == f"C{run}"]
        assert sorted(int(float(r["message_id"])) for r in rows) == list(range(120))
        assert all(r["emojis"] == ["🎉", "😂"] and r["scores"] == [0.5, 0.25] for r in rows)
    finally:
        await store.close()


async def test_a_claim_after_a_batch_still_sees_earlier_events(url):
    store = Store(url, DEFAULT)
    try:
        event = uuid.uuid4().hex
        assert await store.claim_event("discord", event)
        assert not await store.claim_event("discord", event)
        assert await store.claim_event("slack", event)  # ids are per platform
    finally:
        await store.close()


async def test_settings_changes_show_at_once_here_and_after_the_ttl_elsewhere(url):
    a, b = Store(url, DEFAULT), Store(url, DEFAULT, settings_ttl=0.0)
    channel = uuid.uuid4().hex[:12]
    try:
        assert await a.channel("slack", channel) == DEFAULT  # now cached in a
        assert await b.channel("slack", channel) == DEFAULT
        changed = await a.update_channel("slack", channel, threshold=0.4, count=2)
        assert changed == ChannelConfig(True, 0.4, 2)
        assert await a.channel("slack", channel) == changed  # its own change, at once
        assert await b.channel("slack", channel) == changed  # another worker, after its TTL (0 here)
    finally:
        await a.close()
        await b.close()


async def test_a_channel_keeps_the_default_never_list_until_it_is_changed(url):
    """The operator's never-list (EMOJIBOT_NEVER_EMOJIS) is a new channel's; a channel an
    admin changes keeps it, and its own list then lives in the database."""
    default = ChannelConfig(auto_react=True, threshold=0.1, count=3, never=("😘", "💋"))
    a, b = Store(url, default), Store(url, DEFAULT, settings_ttl=0.0)
    channel = uuid.uuid4().hex[:12]
    try:
        assert (await a.channel("slack", channel)).never == ("😘", "💋")
        assert (await a.update_channel("slack", channel, count=2)).never == ("😘", "💋")
        assert (await b.channel("slack", channel)).never == ("😘", "💋")  # stored, not b's default
        changed = await a.update_channel("slack", channel, never=("❤️", "👍🏽", "🧑‍🤝‍🧑"))
        assert changed.never == ("❤️", "👍🏽", "🧑‍🤝‍🧑") == (await b.channel("slack", channel)).never
        assert (await a.update_channel("slack", channel, never=())).never == ()
        assert (await b.channel("slack", channel)).never == ()
    finally:
        await a.close()
        await b.close()


async def test_a_database_error_reaches_every_waiting_caller(tmp_path):
    store = Store(f"sqlite+aiosqlite:///{tmp_path / 'never-migrated.sqlite'}", DEFAULT)
    try:
        results = await asyncio.gather(*(store.claim_event("slack", f"E{i}") for i in range(5)), return_exceptions=True)
        assert all(isinstance(r, StoreUnavailable) for r in results)
        with pytest.raises(StoreUnavailable):  # the writer survives and answers the next call too
            await store.log_prediction("slack", "C", "1.0", "text", "hi", "v", ["🎉"], [0.1])
    finally:
        await store.close()


async def test_close_answers_every_write_in_flight(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'c.sqlite'}"
    await migrate_async(url)
    store = Store(url, DEFAULT)
    claims = [asyncio.create_task(store.claim_event("slack", f"E{i}")) for i in range(60)]
    await asyncio.sleep(0)  # the writer has started its first batch
    await store.close()
    assert all(t.done() for t in claims) and all(t.result() for t in claims)
    again = Store(url, DEFAULT)
    try:
        assert len(await again.rows("processed_events")) == 60
    finally:
        await again.close()


async def test_texts_the_database_would_refuse_are_cleaned_and_cut(url, tmp_path):
    """A NUL (PostgreSQL refuses it), a lone surrogate (UTF-8 cannot encode it), an emoji
    name over its 64-character column and an admin action over 32 are all stored."""
    store = Store(url, DEFAULT, salt_file=tmp_path / "salt")
    run = uuid.uuid4().hex[:8]
    try:
        await store.log_prediction("web", f"C{run}", "m1", "text", "a\x00b \ud83d c", "v", ["🎉"], [0.5])
        await store.log_reaction("slack", f"C{run}", "m1", ":" + "x" * 100 + ":", True, "U1", event_id=f"{run}-r")
        await store.log_reaction("slack", f"C{run}", "m1", "🎉", True, "U1", event_id=f"{run}-r")  # a replay
        await store.audit("slack", f"C{run}", "U1", "a" * 40, "d\x00", True)
        pred = [r for r in await store.rows("predictions") if r["channel_id"] == f"C{run}"][0]
        assert pred["text"] == "ab ? c"
        reactions = [r for r in await store.rows("reaction_events") if r["channel_id"] == f"C{run}"]
        assert len(reactions) == 1 and len(reactions[0]["emoji"]) == 64
        audit = [r for r in await store.rows("admin_audit") if r["channel_id"] == f"C{run}"][0]
        assert audit["action"] == "a" * 32 and audit["detail"] == "d"
    finally:
        await store.close()


async def test_errors_never_carry_the_statement_parameters(url, tmp_path):
    """hide_parameters: a refused row's error names the statement, not someone's message."""
    store = Store(url, DEFAULT, salt_file=tmp_path / "salt")
    secret_text = f"my private message {uuid.uuid4().hex}"
    try:
        with pytest.raises(Exception) as info:  # a JSON column refuses a set (not serialisable)
            await store.log_prediction("web", "C", uuid.uuid4().hex, "text", secret_text, "v", [{"x"}], [0.1])
        assert secret_text not in str(info.value) and secret_text not in repr(info.value)
    finally:
        await store.close()


async def test_the_salt_lives_in_a_0600_file_and_an_old_one_leaves_the_database(tmp_path):
    import hashlib
    import hmac

    from sqlalchemy import text

    url = f"sqlite+aiosqlite:///{tmp_path / 'old.sqlite'}"
    await asyncio.to_thread(migrate, url, "0001")  # the previous version: salt and raw ids inside
    store = Store(url, DEFAULT)
    async with store.engine.begin() as conn:
        await conn.execute(text("INSERT INTO bot_meta (key, value) VALUES ('user_salt', 'old-salt')"))
        await conn.execute(
            text(
                "INSERT INTO admin_audit (platform, channel_id, user_id, action, detail, allowed) "
                "VALUES ('slack', 'C1', 'U42', 'on', '', 1)"
            )
        )
    await store.close()
    await migrate_async(url)
    store = Store(url, DEFAULT)
    try:
        expected = hmac.new(b"old-salt", b"slack:U42", hashlib.sha256).hexdigest()
        assert [r["user_hash"] for r in await store.rows("admin_audit")] == [expected]
        assert await store.user_hash("slack", "U42") == expected  # the same salt, now in a file
        salt_file = tmp_path / "old.sqlite.salt"
        assert salt_file.read_text().strip() == "old-salt" and salt_file.stat().st_mode & 0o777 == 0o600
        async with store.engine.connect() as conn:
            keys = [r[0] for r in await conn.execute(text("SELECT key FROM bot_meta"))]
        assert "user_salt" not in keys
    finally:
        await store.close()


async def test_never_list_changes_at_once_from_two_workers_all_land(url):
    """`change_never` writes a list only over the one it was computed from (compare and
    swap) and makes a missing row with INSERT … ON CONFLICT DO NOTHING: adds and removes
    from two workers and several tasks at the same moment all count, on a channel that has
    no settings row yet as on one that has."""
    a, b = Store(url, DEFAULT), Store(url, DEFAULT)
    try:
        for existing in (True, False):
            channel = uuid.uuid4().hex[:12]
            if existing:
                await a.update_channel("slack", channel, count=2)
            adds = (s.change_never("slack", channel, add=(e,)) for s, e in zip([a, b] * 3, "😘💋🍕🎉🔥😂", strict=True))
            await asyncio.gather(*adds)
            await asyncio.gather(
                a.change_never("slack", channel, remove=("🍕",)), b.change_never("slack", channel, remove=("🔥",))
            )
            assert sorted((await a.change_never("slack", channel)).never) == sorted("😘💋🎉😂")
            assert (await b.channel("slack", channel)).count == (2 if existing else DEFAULT.count)
    finally:
        await a.close()
        await b.close()


async def test_two_retrains_promoting_at_once_over_the_same_version_one_wins(url):
    """`replace_current_model` moves the pointer only over the version it expects, in one
    statement: two workers' promotions over the same current version, at the same moment,
    leave exactly one of them current, from the shipped version (no row) as from another."""
    from sqlalchemy import delete

    from bot.store.models import BotMeta
    from bot.store.repository import CURRENT_MODEL_KEY, MODEL_HISTORY_KEY

    a, b = Store(url, DEFAULT), Store(url, DEFAULT)
    keys = (CURRENT_MODEL_KEY, MODEL_HISTORY_KEY)
    saved: dict[str, str] = {}
    try:
        async with a.session() as s:  # the PostgreSQL database is shared: start from shipped
            saved = {k: (await s.get(BotMeta, k)) for k in keys}
            saved = {k: v.value for k, v in saved.items() if v is not None}
            await s.execute(delete(BotMeta).where(BotMeta.key.in_(keys)))
            await s.commit()
        for expected in (None, "v-base"):
            if expected is not None:
                await a.set_current_model(expected)
            run = uuid.uuid4().hex[:6]
            won = await asyncio.gather(
                a.replace_current_model(expected, f"A-{run}"), b.replace_current_model(expected, f"B-{run}")
            )
            assert sorted(won) == [False, True]
            winner = f"A-{run}" if won[0] else f"B-{run}"
            assert await b.current_model() == winner and (await a.model_history())[-1] == winner
    finally:
        async with a.session() as s:
            await s.execute(delete(BotMeta).where(BotMeta.key.in_(keys)))
            s.add_all([BotMeta(key=k, value=v) for k, v in saved.items()])
            await s.commit()
        await a.close()
        await b.close()
