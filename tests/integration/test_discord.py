"""The Discord adapter (discord.py) against a fake Discord REST + gateway on loopback."""

import asyncio

import numpy as np
import pytest

from bot.adapters.discord import DiscordAdapter, invite_url
from bot.core.bot import AdminPolicy, BotCore
from bot.core.engine import EmojiEngine, PictureEngine
from bot.store.repository import ChannelConfig, Store, migrate_async
from bot.testing.fake_discord import CHANNEL_ID, FakeDiscord, user


async def _bot(tmp_path, ranker, catalog, fake, real=False, **adapter_kw):
    """The adapter over a core; ``real``: the shipped text and picture models, else the
    model-free fakes (what Discord sees does not depend on the model)."""
    from bot.testing.fake_engine import FakeEngine, FakePictureEngine

    url = f"sqlite+aiosqlite:///{tmp_path / 'discord.sqlite'}"
    await migrate_async(url)
    store = Store(url, ChannelConfig(True, 0.0, 3))
    if real:
        from models.picture import PictureModel

        text, pictures = EmojiEngine(ranker), PictureEngine(PictureModel())
    else:
        text, pictures = FakeEngine(catalog), FakePictureEngine()
    core = BotCore(store, text, pictures, catalog=catalog, admins=AdminPolicy(role_ids=frozenset({"777"})))
    adapter = DiscordAdapter(core, fake.token, **adapter_kw)
    task = asyncio.create_task(adapter.run())
    return core, adapter, task


async def _stop(core, adapter, task):
    await adapter.close()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await core.text.close()
    await core.pictures.close()
    await core.store.close()


@pytest.fixture()
async def discord_bot(tmp_path, ranker, catalog):
    fake = FakeDiscord()
    await fake.start()
    fake.patch_discord()
    core, adapter, task = await _bot(tmp_path, ranker, catalog, fake)
    await fake.wait_ready()
    yield fake, core
    await _stop(core, adapter, task)
    await fake.close()


@pytest.fixture()
async def real_discord_bot(tmp_path, ranker, catalog):
    """The shipped models end to end."""
    fake = FakeDiscord()
    await fake.start()
    fake.patch_discord()
    core, adapter, task = await _bot(tmp_path, ranker, catalog, fake, real=True)
    await fake.wait_ready()
    yield fake, core
    await _stop(core, adapter, task)
    await fake.close()


async def test_login_identifies_with_the_intents_and_syncs_commands(discord_bot):
    fake, _ = discord_bot
    ident = fake.identifies[0]
    intents = ident["intents"]
    assert intents & (1 << 15)  # MESSAGE_CONTENT
    assert intents & (1 << 9) and intents & (1 << 10)  # GUILD_MESSAGES, GUILD_MESSAGE_REACTIONS
    synced = (await fake.wait_for("commands"))[0].data["commands"]
    assert {c["name"] for c in synced} == {"emojify", "emojify-admin"}
    texts = [c["description"] for c in synced] + [o["description"] for c in synced for o in c.get("options", [])]
    assert all(0 < len(t.encode("utf-16-le")) // 2 <= 100 for t in texts)  # Discord refuses longer ones


async def test_message_gets_url_encoded_reaction_puts(real_discord_bot):
    fake, core = real_discord_bot
    msg = fake.message(CHANNEL_ID, "merry christmas everyone", author=user("2002", "alice"))
    await fake.dispatch("MESSAGE_CREATE", msg)
    puts = await fake.wait_for("reaction", 1)
    assert puts[0].data["emoji"] == "🎄" and puts[0].data["raw"] == "%F0%9F%8E%84"  # URL-encoded on the wire
    assert puts[0].data["message_id"] == msg["id"]
    await fake.dispatch(
        "MESSAGE_CREATE", fake.message(CHANNEL_ID, "merry christmas", author=user("2003", "b", bot=True))
    )
    await asyncio.sleep(1.0)
    assert {r.data["message_id"] for r in fake.of("reaction")} == {msg["id"]}  # bots are not answered


async def test_mentions_and_custom_emojis_reach_the_core_as_a_person_reads_them(discord_bot):
    fake, core = discord_bot
    await core.store.update_channel("discord", CHANNEL_ID, learning=True)
    msg = fake.message(CHANNEL_ID, "<@2003> pizza at <t:1618953630:t> <:partyparrot:123456>", author=user("2002", "a"))
    await fake.dispatch("MESSAGE_CREATE", msg)
    await fake.wait_for("reaction", 1)
    preds = await core.store.rows("predictions")
    assert preds[0]["text"] == "@user pizza at  partyparrot"


async def test_emojify_interaction_is_deferred_then_answered_ephemerally(discord_bot):
    """Discord drops an interaction not called back within 3 s: the bot says "thinking…"
    (a deferred, ephemeral callback) at once, then sends the answer as a follow-up."""
    fake, _ = discord_bot
    inter = fake.interaction("emojify", [{"name": "text", "type": 3, "value": "pizza night with friends"}])
    await fake.dispatch("INTERACTION_CREATE", inter)
    cb = (await fake.wait_for("interaction_callback"))[0].data
    assert cb["id"] == inter["id"] and cb["token"] == inter["token"]
    assert cb["payload"]["type"] == 5 and cb["payload"]["data"]["flags"] & 64  # deferred, ephemeral
    answer = (await fake.wait_for("followup"))[0].data
    assert answer["token"] == inter["token"] and answer["payload"]["flags"] & 64
    assert len(answer["payload"]["content"].splitlines()) == 6


async def test_a_command_is_answered_when_the_store_is_slower_than_discords_3_seconds(discord_bot, monkeypatch):
    """The store held up past Discord's deadline (a lock, an outage's timeouts): the
    callback went out after it and Discord refused it (10062), so the person saw "The
    application did not respond". The real SQLite store, its claim held up 3.5 s."""
    fake, core = discord_bot
    real = core.store.claim_event

    async def slow_claim(*args, **kw):
        await asyncio.sleep(3.5)
        return await real(*args, **kw)

    monkeypatch.setattr(core.store, "claim_event", slow_claim)
    inter = fake.interaction("emojify", [{"name": "text", "type": 3, "value": "pizza night with friends"}])
    await fake.dispatch("INTERACTION_CREATE", inter)
    answer = (await fake.wait_for("followup", timeout=20))[0].data
    assert len(answer["payload"]["content"].splitlines()) == 6


async def test_an_export_longer_than_a_discord_message_arrives_whole_for_the_mentioned_person(discord_bot):
    """`/emojify-admin export @someone`: Discord sends the mention as <@id>, which reached
    the core as "@user" (nothing stored about "user"), and an export past 2,000 characters
    was refused by Discord (400) and never answered. The mention keeps its id now, and the
    answer comes in as many messages as it needs."""
    fake, core = discord_bot
    await core.store.update_channel("discord", CHANNEL_ID, learning=True)
    for i in range(12):  # twelve long messages from one person, logged with their text
        text = f"pizza night number {i} " + "with friends and family and everyone we know " * 4
        await fake.dispatch("MESSAGE_CREATE", fake.message(CHANNEL_ID, text, author=user("2077", "bob")))
    await fake.wait_for("reaction", 12)
    for _ in range(100):
        if len(await core.store.rows("predictions")) >= 12:
            break
        await asyncio.sleep(0.05)
    action = {"name": "action", "type": 3, "value": "export <@2077>"}
    await fake.dispatch("INTERACTION_CREATE", fake.interaction("emojify-admin", [action], roles=["777"]))
    parts = await fake.wait_for("followup", 2, timeout=20)
    await asyncio.sleep(0.5)
    said = [p.data["payload"]["content"] for p in fake.of("followup")]
    assert len(said) >= 2 and all(len(s) <= 2000 for s in said)
    assert said[0].startswith("Stored about `@2077`: 12 messages")
    assert "cut at 3,000 characters" in said[-1]
    assert parts


async def test_admin_by_role_and_refusal_without_it(discord_bot):
    fake, core = discord_bot
    await fake.dispatch(
        "INTERACTION_CREATE", fake.interaction("emojify-admin", [{"name": "action", "type": 3, "value": "off"}])
    )
    await fake.dispatch(
        "INTERACTION_CREATE",
        fake.interaction("emojify-admin", [{"name": "action", "type": 3, "value": "off"}], roles=["777"]),
    )
    answers = await fake.wait_for("followup", 2)
    texts = sorted(c.data["payload"]["content"] for c in answers)
    assert any("Only admins" in t for t in texts) and any("Auto-react is off" in t for t in texts)
    assert (await core.store.channel("discord", CHANNEL_ID)).auto_react is False


async def test_an_admin_keeps_an_emoji_out_of_the_channel(real_discord_bot):
    """Discord sends the emojis an admin types as characters; the never-list reads them,
    and the reaction PUTs then skip the emoji."""
    fake, core = real_discord_bot
    await core.store.update_channel("discord", CHANNEL_ID, threshold=-1.0)  # the first 3, whatever they fit
    action = {"name": "action", "type": 3, "value": "never 🎄"}
    await fake.dispatch("INTERACTION_CREATE", fake.interaction("emojify-admin", [action], roles=["777"]))
    said = (await fake.wait_for("followup"))[0].data["payload"]["content"]
    assert "Never used in this channel: 🎄." in said
    msg = fake.message(CHANNEL_ID, "merry christmas everyone", author=user("2002", "alice"))
    await fake.dispatch("MESSAGE_CREATE", msg)
    await fake.wait_for("reaction", 1)
    await asyncio.sleep(1.0)
    added = [r.data["emoji"] for r in fake.of("reaction")]
    count = (await core.store.channel("discord", CHANNEL_ID)).count
    ranked = [r.emoji for r in core.text.rank(["merry christmas everyone"], count + 1)[0]]
    assert ranked[0] == "🎄" and added == [e for e in ranked if e != "🎄"][:count]  # the ranking's next ones


async def test_reaction_add_is_feedback(discord_bot):
    fake, core = discord_bot
    msg = fake.message(CHANNEL_ID, "we won the championship!!!", author=user("2002", "alice"))
    await fake.dispatch("MESSAGE_CREATE", msg)
    await fake.wait_for("reaction", 1)
    await fake.dispatch("MESSAGE_REACTION_ADD", fake.reaction(msg["id"], "2002", "🎉"))
    for _ in range(50):
        rows = await core.store.rows("reaction_events")
        if rows:
            break
        await asyncio.sleep(0.1)
    assert [(r["emoji"], r["added"], r["platform"]) for r in rows] == [("🎉", True, "discord")]


async def test_picture_attachment_gets_a_reply_with_the_novel_emoji(real_discord_bot, data_dir):
    fake, _ = real_discord_bot
    z = np.load(data_dir / "tinyimagenet_emoji" / "train.npz")
    photo = z["jpeg"][z["offsets"][0] : z["offsets"][1]].tobytes()
    msg = fake.message(CHANNEL_ID, "", author=user("2002", "alice"), attachments=[fake.attachment("frog.jpg", photo)])
    await fake.dispatch("MESSAGE_CREATE", msg)
    sent = (await fake.wait_for("message", 1, timeout=60))[0].data
    assert str(sent["payload"]["message_reference"]["message_id"]) == msg["id"]
    assert sent["files"] and sent["files"][0][1].startswith(b"\x89PNG")


async def test_sharded_client_connects_every_shard(tmp_path, ranker, catalog):
    fake = FakeDiscord()
    await fake.start()
    fake.patch_discord()
    core, adapter, task = await _bot(tmp_path, ranker, catalog, fake, shard_count=2, sync_commands=False)
    try:
        await fake.wait_ready(shards=2)
        assert sorted(tuple(i["shard"]) for i in fake.identifies) == [(0, 2), (1, 2)]
    finally:
        await _stop(core, adapter, task)
        await fake.close()


def test_invite_url_asks_for_exactly_the_needed_permissions():
    import discord

    url = invite_url(123)
    perms = discord.Permissions(int(url.split("permissions=")[1].split("&")[0]))
    assert {name for name, on in perms if on} == {
        "read_messages",
        "read_message_history",
        "add_reactions",
        "send_messages",
        "send_messages_in_threads",
        "attach_files",
    }
    assert perms.view_channel  # read_messages is its alias
    assert "scope=bot+applications.commands" in url
