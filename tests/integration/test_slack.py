"""The Slack adapter against a fake Slack on loopback: signed requests in, Web API calls out."""

import asyncio
import time

import numpy as np
import pytest

from bot.adapters.slack import SlackAdapter
from bot.core.bot import BotCore
from bot.core.engine import EmojiEngine, PictureEngine
from bot.store.repository import ChannelConfig, Store, migrate_async
from bot.testing.fake_slack import TEST_SIGNING_SECRET, FakeSlack, SlackSender, serve_bot_on_fake_slack

SECRET = TEST_SIGNING_SECRET


async def _stack(core, catalog):
    return await serve_bot_on_fake_slack(core, {n for e in catalog for n in e.short_names}, SECRET)


async def _running(core, catalog):
    fake, adapter, server = await _stack(core, catalog)
    async with SlackSender(str(server.make_url("/slack/events")), SECRET) as sender:
        yield fake, sender, core.store
    await server.close()
    await core.pipeline.drain(0.5)
    await adapter.close()
    await fake.close()


@pytest.fixture()
async def slack(make_core, catalog):
    """The adapter over the model-free FakeEngine (what Slack sees does not depend on the model)."""
    from bot.testing.fake_engine import FakePictureEngine

    core = await make_core(default=ChannelConfig(True, 0.0, 3), pictures=FakePictureEngine())
    async for stack in _running(core, catalog):
        yield stack


@pytest.fixture()
async def real_slack(make_core, ranker, catalog):
    """The same over the shipped text and picture models, end to end."""
    from models.picture import PictureModel

    core = await make_core(
        default=ChannelConfig(True, 0.0, 3), text=EmojiEngine(ranker), pictures=PictureEngine(PictureModel())
    )
    async for stack in _running(core, catalog):
        yield stack


def message(text, ts=None, channel="C1", **kw):
    return {"type": "message", "channel": channel, "user": "U1", "text": text, "ts": ts or f"{time.time():.6f}", **kw}


async def test_bad_signature_and_stale_timestamp_are_refused(slack):
    fake, sender, _ = slack
    body = '{"type": "event_callback", "event": {}}'
    forged = {"X-Slack-Request-Timestamp": str(int(time.time())), "X-Slack-Signature": "v0=" + "0" * 64}
    assert (await sender.post(body, "application/json", forged))[0] == 401
    stale = sender.sign(body, timestamp=int(time.time()) - 600)
    assert (await sender.post(body, "application/json", stale))[0] == 401
    assert fake.calls_of("reactions.add") == []


async def test_message_gets_reactions_with_slack_names_and_a_retry_reacts_once(real_slack):
    fake, sender, store = real_slack
    ev = message("merry christmas everyone")
    status, _ = await sender.event(ev, event_id="EvXMAS1")
    assert status == 200
    calls = await fake.wait_for("reactions.add", 1)
    assert await sender.event(ev, event_id="EvXMAS1", retry=1) == (200, "")  # Slack's retry of the same event
    await asyncio.sleep(1.0)
    names = [c.args["name"] for c in fake.calls_of("reactions.add")]
    assert names[0] == "christmas_tree" and len(names) == len(set(names)) <= 3
    assert all(c.args["timestamp"] == ev["ts"] and c.args["channel"] == "C1" for c in calls)
    preds = await store.rows("predictions")
    assert len(preds) == 1 and preds[0]["message_id"] == ev["ts"]


async def test_the_core_reads_a_message_as_a_person_does_not_in_slack_markup(real_slack):
    """What Slack sends (entities, mentions, links, emoji codes) reaches the ranker and the
    store as the text a person sees; the emoji the writer typed is read as that emoji."""
    fake, sender, store = real_slack
    await store.update_channel("slack", "C1", learning=True)
    ev = message("Q&amp;A then :sushi: with <@U024BE7LH>, menu: <https://example.org/menu|the menu>")
    assert (await sender.event(ev, event_id="EvMARKUP1"))[0] == 200
    await fake.wait_for("reactions.add", 1)
    preds = await store.rows("predictions")
    assert preds[0]["text"] == "Q&A then 🍣 with @U024BE7LH, menu: the menu"
    assert "sushi" in {c.args["name"] for c in fake.calls_of("reactions.add")}


async def test_rate_limited_reaction_is_retried_after_retry_after(slack):
    fake, sender, _ = slack
    fake.rate_limit("reactions.add", times=1, retry_after=1)
    await sender.event(message("pizza night with friends"))
    await fake.wait_for("reactions.add", 1)
    assert len(fake.calls_of("ratelimited:reactions.add")) == 1
    gap = fake.calls_of("reactions.add")[0].at - fake.calls_of("ratelimited:reactions.add")[0].at
    assert gap >= fake.retry_after * 0.9


async def test_bot_messages_and_edits_are_not_answered(slack):
    fake, sender, _ = slack
    await sender.event(message("merry christmas", bot_id="B1"))
    await sender.event(message("merry christmas", user=fake.bot_user_id))
    await sender.event(message("merry christmas", subtype="message_changed"))
    await asyncio.sleep(1.0)
    assert fake.calls_of("reactions.add") == []


async def test_reactions_on_answered_messages_are_stored(slack):
    fake, sender, store = slack
    ev = message("we won the championship!!!")
    await sender.event(ev)
    await fake.wait_for("reactions.add", 1)
    item = {"type": "message", "channel": "C1", "ts": ev["ts"]}
    await sender.event({"type": "reaction_added", "user": "U5", "reaction": "+1::skin-tone-3", "item": item})
    await sender.event({"type": "reaction_removed", "user": "U5", "reaction": "+1::skin-tone-3", "item": item})
    for _ in range(50):
        rows = await store.rows("reaction_events")
        if len(rows) == 2:
            break
        await asyncio.sleep(0.1)
    # listeners run concurrently after the ack, so the two rows may land in either order
    assert sorted((r["emoji"], r["added"]) for r in rows) == [("👍", False), ("👍", True)]
    assert rows[0]["user_hash"] != "U5"


async def test_emojify_is_acked_then_answered_ephemerally(slack):
    fake, sender, _ = slack
    t0 = time.perf_counter()
    status, _ = await sender.command("/emojify", "so tired of this rain", user="U3")
    assert status == 200 and time.perf_counter() - t0 < 3.0
    call = (await fake.wait_for("chat.postEphemeral", 1))[0]
    assert call.args["user"] == "U3" and call.args["channel"] == "C1" and len(call.args["text"].splitlines()) == 6
    await sender.command("/emojify-admin", "off", user="U3")  # not an admin
    refused = (await fake.wait_for("chat.postEphemeral", 2))[1]
    assert "Only admins" in refused.args["text"]


async def test_emojify_where_the_bot_is_not_a_member_is_answered_through_its_response_url(slack):
    """People run slash commands in any conversation, and Slack refuses the bot's
    chat.postEphemeral where it is not a member (`not_in_channel`): the answer, and a
    `forget-me`'s confirmation, went nowhere. It goes to the command's response_url now;
    one that has expired (a replay after half an hour) falls back to chat.postEphemeral."""
    fake, sender, _ = slack
    fake.outside.add("C-ELSEWHERE")
    status, _ = await sender.command(
        "/emojify", "so tired of this rain", user="U3", channel="C-ELSEWHERE", response_url=fake.response_url()
    )
    assert status == 200
    answer = (await fake.wait_for("response_url", 1))[0]
    assert answer.args["response_type"] == "ephemeral" and len(answer.args["text"].splitlines()) == 6
    assert fake.calls_of("chat.postEphemeral") == []
    expired = fake.response_url()
    fake.expired_responses.add(expired.rsplit("/", 1)[1])
    await sender.command("/emojify", "pizza night", user="U3", channel="C1", response_url=expired)
    call = (await fake.wait_for("chat.postEphemeral", 1))[0]
    assert call.args["user"] == "U3" and call.args["channel"] == "C1"
    assert len(fake.calls_of("response_url")) == 1


async def test_an_admin_keeps_emojis_out_of_a_channel_by_their_slack_names(make_core, ranker, catalog):
    """Slack sends the emojis an admin types in a command as :short_names: (skin tones
    too); the channel's never-list reads them, and the reactions take the ranking's next."""
    # threshold -1: the first 3 are added whatever their fit, so the list alone decides
    core = await make_core(default=ChannelConfig(True, -1.0, 3), text=EmojiEngine(ranker), admins=("UADMIN",))
    text = "merry christmas everyone"
    ranked = [r.emoji for r in ranker.rank([text], 6)[0]]
    kept_out = ranked[:2]  # the shipped model: 🎄 😂
    codes = " ".join(f":{catalog.lookup(e).short_name}:" for e in kept_out)
    async for fake, sender, _ in _running(core, catalog):
        await sender.command("/emojify-admin", f"never {codes} :santa::skin-tone-2:", user="UADMIN")
        said = (await fake.wait_for("chat.postEphemeral", 1))[0].args["text"]
        assert said.startswith("Done.") and f"Never used in this channel: {' '.join(kept_out)} 🎅." in said
        await sender.event(message(text))
        await fake.wait_for("reactions.add", 3)
        await asyncio.sleep(0.5)
        names = [c.args["name"] for c in fake.calls_of("reactions.add")]
        assert names == [catalog.lookup(e).short_name for e in ranked if e not in (*kept_out, "🎅")][:3]
        assert "christmas_tree" not in names


async def test_picture_is_downloaded_with_the_token_and_answered_in_thread(real_slack, data_dir):
    fake, sender, store = real_slack
    z = np.load(data_dir / "tinyimagenet_emoji" / "train.npz")
    fake.files["frog.jpg"] = z["jpeg"][z["offsets"][0] : z["offsets"][1]].tobytes()
    f = {
        "id": "F1",
        "name": "frog.jpg",
        "mimetype": "image/jpeg",
        "size": len(fake.files["frog.jpg"]),
        "url_private": fake.file_url("frog.jpg"),
    }
    ev = message("", subtype="file_share", files=[f])
    await sender.event(ev)
    await fake.wait_for("files.completeUploadExternal", 1, timeout=60)
    share = fake.shared[0]
    assert share["thread_ts"] == ev["ts"] and share["channel_id"] == "C1"
    assert share["bytes"][0].startswith(b"\x89PNG")
    assert fake.calls_of("reactions.add")
    assert (await store.rows("predictions"))[0]["kind"] == "picture"


async def test_socket_mode_connects_with_the_app_token_acks_every_envelope_and_reacts(tmp_path, ranker, catalog):
    """Socket Mode end to end: apps.connections.open with the xapp token, the WebSocket,
    hello, envelopes acknowledged by id, a retried envelope reacting once, a command."""
    fake = FakeSlack(known_emoji_names={n for e in catalog for n in e.short_names})
    api = await fake.start()
    url = f"sqlite+aiosqlite:///{tmp_path / 'socket.sqlite'}"
    await migrate_async(url)
    store = Store(url, ChannelConfig(True, 0.0, 3))
    core = BotCore(store, EmojiEngine(ranker), catalog=catalog)
    adapter = SlackAdapter(core, fake.token, SECRET, base_url=api)
    await adapter.start()
    task = asyncio.create_task(adapter.run_socket_mode(fake.app_token))
    try:
        await fake.wait_for_socket()
        opened = fake.calls_of("apps.connections.open")
        assert len(opened) == 1  # with the app-level token: the fake refuses the bot token there

        ev = message("happy birthday Sam, have a great one!", ts="1700000001.000100")
        # auto-react adds those of the top 3 whose fit reaches the channel's threshold (0.0)
        expected = sum(r.fit >= 0.0 for r in ranker.rank([ev["text"]], k=3)[0])
        assert expected >= 2
        first = await fake.socket_event(ev, event_id="EvSOCK1")
        retry = await fake.socket_event(ev, event_id="EvSOCK1", retry=1)
        reactions = await fake.wait_for("reactions.add", expected)
        acks = {c.args["envelope_id"] for c in await fake.wait_for("socket.ack", 2)}
        assert {first, retry} <= acks
        assert {c.args["timestamp"] for c in reactions} == {"1700000001.000100"}

        await fake.socket_command("/emojify", "pizza night with friends", user="U7")
        answer = (await fake.wait_for("chat.postEphemeral", 1))[0]
        lines = answer.args["text"].splitlines()  # the five, one line each, then maybe a note on their fit
        assert answer.args["user"] == "U7" and len(lines[0].split()) == 5
        assert all("fit `" in line for line in lines[1:6]) and len(lines) <= 7
        await fake.wait_for("socket.ack", 3)
        await asyncio.sleep(0.3)
        assert len(fake.calls_of("reactions.add")) == expected  # the retried envelope reacted once
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await adapter.close()
        await core.text.close()
        await store.close()
        await fake.close()


async def test_the_fake_refuses_the_wrong_token_type_as_slack_does():
    from aiohttp import ClientSession

    fake = FakeSlack()
    api = await fake.start()
    try:
        async with ClientSession() as s:
            for method, token, error in (
                ("apps.connections.open", fake.token, "not_allowed_token_type"),
                ("reactions.add", fake.app_token, "not_allowed_token_type"),
                ("apps.connections.open", "xapp-wrong", "invalid_auth"),
            ):
                async with s.post(api + method, headers={"Authorization": f"Bearer {token}"}) as r:
                    assert (await r.json())["error"] == error
    finally:
        await fake.close()
