"""BotCore over the real store (SQLite files; PostgreSQL for the multi-worker dedupe) and
the real engines: what the bot does with each neutral event."""

import asyncio
import uuid

import numpy as np
import pytest

from bot.core.bot import AdminPolicy, BotCore
from bot.core.engine import EmojiEngine
from bot.core.events import AddReactions, Attachment, CommandInvoked, MessageCreated, ReactionChanged, Reply
from bot.store.repository import ChannelConfig, Store, migrate

PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
DEFAULT = ChannelConfig(auto_react=False, threshold=0.0, count=3)


def _id() -> str:
    return uuid.uuid4().hex


def msg(text, channel="C1", author="U1", **kw):
    return MessageCreated("slack", _id(), channel, _id(), author, text, **kw)


def cmd(command, text, user="U1", channel="C1", **kw):
    return CommandInvoked("slack", _id(), channel, user, command, text, **kw)


@pytest.fixture()
def sqlite_url(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.sqlite'}"
    migrate(url)
    return url


@pytest.fixture()
def run():
    loop = asyncio.new_event_loop()
    yield loop.run_until_complete
    loop.close()


@pytest.fixture()
def core(sqlite_url, ranker, catalog, run):
    store = Store(sqlite_url, DEFAULT, user_salt="test-salt")
    engine = EmojiEngine(ranker)
    c = BotCore(
        store, engine, catalog=catalog, admins=AdminPolicy(user_ids=frozenset({"UADMIN"})), bot_user_ids=["UBOT"]
    )
    yield c
    run(engine.close())
    run(store.close())


def test_channels_are_quiet_until_an_admin_switches_them_on(core, run):
    assert run(core.handle(msg("merry christmas everyone"))) == []
    denied = run(core.handle(cmd("emojify-admin", "on", user="U2")))
    assert denied[0].ephemeral and "Only admins" in denied[0].text
    ok = run(core.handle(cmd("emojify-admin", "on", user="UADMIN")))
    assert "Auto-react is on" in ok[0].text
    acts = run(core.handle(msg("merry christmas everyone")))
    assert isinstance(acts[0], AddReactions) and 1 <= len(acts[0].emojis) <= 3
    assert acts[0].emojis[0].char == "🎄" and acts[0].emojis[0].short_name == "christmas_tree"
    audit = run(core.store.rows("admin_audit"))
    u2, admin = run(core.store.user_hash("slack", "U2")), run(core.store.user_hash("slack", "UADMIN"))
    assert [(a["user_hash"], a["action"], a["allowed"]) for a in audit] == [(u2, "on", False), (admin, "on", True)]
    assert "U2" not in str(audit) and "UADMIN" not in str(audit)  # salted hashes, never the raw ids


def test_threshold_and_count_shape_the_reactions(core, run):
    run(core.handle(cmd("emojify-admin", "on", user="UADMIN")))
    run(core.handle(cmd("emojify-admin", "count 1", user="UADMIN")))
    acts = run(core.handle(msg("happy birthday my friend")))
    assert len(acts[0].emojis) == 1
    run(core.handle(cmd("emojify-admin", "threshold 0.99", user="UADMIN")))
    assert run(core.handle(msg("happy birthday my friend"))) == []  # nothing scores that high
    bad = run(core.handle(cmd("emojify-admin", "threshold lots", user="UADMIN")))
    assert "number from -1 to 1" in bad[0].text


def test_a_retried_event_is_handled_once(core, run):
    run(core.handle(cmd("emojify-admin", "on", user="UADMIN")))
    m = msg("pizza night with friends")
    first, second = run(core.handle(m)), run(core.handle(m))
    assert first and second == []
    assert len(run(core.store.rows("predictions"))) == 1


def test_bots_are_never_answered(core, run):
    run(core.handle(cmd("emojify-admin", "on", user="UADMIN")))
    assert run(core.handle(msg("merry christmas", author="UBOT"))) == []
    assert run(core.handle(msg("merry christmas", author="U9", author_is_bot=True))) == []


def test_reactions_on_answered_messages_are_logged_with_a_salted_hash(core, run):
    run(core.handle(cmd("emojify-admin", "on", user="UADMIN")))
    m = msg("we won the championship!!!")
    run(core.handle(m))
    run(core.handle(ReactionChanged("slack", _id(), m.channel_id, m.message_id, "U7", "tada", True)))
    run(core.handle(ReactionChanged("slack", _id(), m.channel_id, m.message_id, "U7", "tada", False)))
    run(core.handle(ReactionChanged("slack", _id(), "C1", "not-ours", "U7", "tada", True)))  # not answered: ignored
    run(core.handle(ReactionChanged("slack", _id(), m.channel_id, m.message_id, "UBOT", "tada", True)))  # the bot
    rows = run(core.store.rows("reaction_events"))
    assert [(r["emoji"], r["added"]) for r in rows] == [("🎉", True), ("🎉", False)]
    assert rows[0]["user_hash"] != "U7" and len(rows[0]["user_hash"]) == 64
    assert rows[0]["user_hash"] == rows[1]["user_hash"]
    pred = run(core.store.rows("predictions"))[0]
    assert pred["model_version"] == core.model_version and len(pred["emojis"]) == len(pred["scores"])


def test_emojify_answers_only_the_caller(core, ranker, run):
    help_ = run(core.handle(cmd("emojify", "   ")))
    assert help_[0].ephemeral and "/emojify TEXT" in help_[0].text
    ans = run(core.handle(cmd("emojify", "so tired of this rain")))
    assert ans[0].ephemeral and len(ans[0].emojis) == 5
    # the ranker's five, shown best fit first, each with its fit (the cosine, -1..1)
    ranked = ranker.rank(["so tired of this rain"], 5)[0]
    by_fit = sorted(ranked, key=lambda r: -r.fit)
    assert [e.char for e in ans[0].emojis] == [r.emoji for r in by_fit]
    assert [e.score for e in ans[0].emojis] == pytest.approx([r.fit for r in by_fit], abs=1e-6)
    assert all(-1.0 <= e.score <= 1.0 for e in ans[0].emojis)
    assert ans[0].text.split("\n")[0] == " ".join(r.emoji for r in by_fit)


def test_emojify_leads_with_the_emoji_that_fits(core, ranker, run):
    """The ranking puts 😂, which people use everywhere, first for a late train; the reply
    shows the same five with the fitting ones first."""
    text = "ugh, my train is late again"
    ranked = ranker.rank([text], 5)[0]
    reply = run(core.handle(cmd("emojify", text)))[0]
    assert sorted(e.char for e in reply.emojis) == sorted(r.emoji for r in ranked)
    fits = [e.score for e in reply.emojis]
    assert fits == sorted(fits, reverse=True)
    shown = [e.char for e in reply.emojis]
    assert ranked[0].emoji == "😂" and shown[0] == "🚆"  # the train fits; 😂 goes down among those that do not
    assert shown.index("😂") > shown.index("🚆") and reply.emojis[shown.index("😂")].score < 0


def test_emojify_says_so_when_nothing_fits(core, ranker, run):
    """A top 5 in which no emoji fits the message (popularity filled it) says so."""
    run(core.handle(cmd("emojify-admin", "threshold 0.2", user="UADMIN")))  # the product's default
    texts = ["pizza party in the kitchen at noon", "our server is down again and nobody knows why"]
    flagged = []
    for text in texts:
        reply = run(core.handle(cmd("emojify", text)))[0]
        best_fit = max(r.fit for r in ranker.rank([text], 5)[0])
        flagged.append("None of these fits" in reply.text)
        assert flagged[-1] == (best_fit < 0.2)  # the channel's threshold
    assert flagged == [False, True]  # the shipped model: 🍕 fits the party, nothing the outage


def test_emojify_says_which_emojis_fit_when_only_some_do(core, ranker, run):
    run(core.handle(cmd("emojify-admin", "threshold 0.2", user="UADMIN")))
    text = "our server is down again and the pager won't stop"
    ranked = sorted(ranker.rank([text], 5)[0], key=lambda r: -r.fit)  # as the reply shows them
    fitting = [r.emoji for r in ranked if r.fit >= 0.2]
    assert 0 < len(fitting) < 5  # the shipped model: one of the five fits, 😂 ranked first does not
    reply = run(core.handle(cmd("emojify", text)))[0].text
    assert f"Fits the message (at least 0.2): {' '.join(fitting)};" in reply
    assert "None of these fits" not in reply
    # and which of the others are there for how often people use them, not for the message
    popular = [r.emoji for r in ranked if r.fit < 0.2 and r.popular >= 0.5]
    assert {"😂", "❤️"} <= set(popular)  # the shipped model: 0.72 and 0.92 of their probability
    assert "😍" not in reply  # a complaint (the complaint model): the guard holds it back
    assert f"the others are weaker guesses ({' '.join(popular)} are here mostly because people use them most)" in reply


def test_emojify_names_no_emoji_as_popular_filler_where_the_message_chose_it(core, ranker, run):
    run(core.handle(cmd("emojify-admin", "threshold 0.2", user="UADMIN")))
    text = "I'm bored"  # every emoji of its top 5 is there for the message (🙄 🙃 😪 😌 😩)
    ranked = ranker.rank([text], 5)[0]
    assert all(r.popular < 0.5 for r in ranked)
    assert "because people use" not in run(core.handle(cmd("emojify", text)))[0].text


def test_message_texts_are_stored_only_where_the_channel_learns(core, run):
    # auto-react alone: the bot answers and logs what it answered, but keeps no text
    run(core.handle(cmd("emojify-admin", "on", user="UADMIN", channel="CLOUD")))
    run(core.handle(cmd("emojify", "loud channel text", channel="CLOUD")))
    assert run(core.handle(msg("merry christmas everyone", channel="CLOUD")))
    rows = run(core.store.rows("predictions"))
    assert [(r["kind"], r["text"]) for r in rows] == [("text", "")] and rows[0]["emojis"]
    # learning on: every human message is kept, reacted to or not, and /emojify texts too
    st = run(core.handle(cmd("emojify-admin", "learning on", user="UADMIN", channel="CLEARN")))
    assert "kept to learn from" in st[0].text and "Auto-react is off" in st[0].text
    assert run(core.handle(msg("just a quiet note", channel="CLEARN"))) == []
    run(core.handle(cmd("emojify", "learning channel text", channel="CLEARN")))
    run(core.handle(msg("from a bot", channel="CLEARN", author_is_bot=True)))
    texts = sorted(r["text"] for r in run(core.store.rows("predictions")) if r["channel_id"] == "CLEARN")
    assert texts == ["just a quiet note", "learning channel text"]
    # and off again: nothing more is kept
    run(core.handle(cmd("emojify-admin", "learning off", user="UADMIN", channel="CLEARN")))
    run(core.handle(msg("not kept", channel="CLEARN")))
    assert "not kept" not in [r["text"] for r in run(core.store.rows("predictions"))]


def test_status_reports_settings_model_and_counts(core, run):
    run(core.handle(cmd("emojify-admin", "on", user="UADMIN")))
    st = run(core.handle(cmd("emojify-admin", "status", user="UADMIN")))
    assert "Auto-react is on" in st[0].text and core.model_version in st[0].text


def test_pictures_without_a_picture_model_fall_back_to_text_and_say_so(core, run):
    run(core.handle(cmd("emojify-admin", "on", user="UADMIN")))
    att = Attachment("cat.png", "image/png", 10, b"\x89PNG....")
    acts = run(core.handle(msg("merry christmas", attachments=(att,))))
    assert isinstance(acts[0], AddReactions)
    assert isinstance(acts[-1], Reply) and "can't look at pictures" in acts[-1].text and acts[-1].thread_of


def test_pictures_get_reactions_and_a_novel_emoji(sqlite_url, ranker, catalog, data_dir, run):
    from bot.core.engine import PictureEngine
    from models.picture import PictureModel

    z = np.load(data_dir / "tinyimagenet_emoji" / "train.npz")
    photo = z["jpeg"][z["offsets"][0] : z["offsets"][1]].tobytes()
    store = Store(sqlite_url, ChannelConfig(True, 0.0, 3), user_salt="s")
    text, pics = EmojiEngine(ranker), PictureEngine(PictureModel())
    core = BotCore(store, text, pics, catalog=catalog)
    acts = run(core.handle(msg("", attachments=(Attachment("frog.jpg", "image/jpeg", len(photo), photo),))))
    assert isinstance(acts[0], AddReactions) and acts[0].emojis
    reply = acts[1]
    assert reply.thread_of == acts[0].message_id and reply.image_png.startswith(b"\x89PNG")
    # the channel's never-list: the picture's next emojis instead of the one kept out
    first = acts[0].emojis[0].char
    run(store.update_channel("slack", "C1", never=(first,)))
    drawn_from = []  # the emojis the novel emoji is drawn from: what is left, too
    real_novel_png = pics.novel_png

    async def novel_png(answer):
        drawn_from.append([e for e, _ in answer.top])
        return await real_novel_png(answer)

    pics.novel_png = novel_png
    pics.ranker._rng = np.random.default_rng(7)  # the same noise for the bot's answer and the one read here
    again = run(core.handle(msg("", attachments=(Attachment("frog.jpg", "image/jpeg", len(photo), photo),))))
    pics.ranker._rng = np.random.default_rng(7)
    expected = [e for e, _ in pics.answer([photo], k=4)[0].top if e != first][:3]
    assert [e.char for e in again[0].emojis] == expected and first not in expected
    assert drawn_from == [expected] and again[1].image_png.startswith(b"\x89PNG")
    bad = run(core.handle(msg("", attachments=(Attachment("x.jpg", "image/jpeg", 5, b"hello"),))))
    assert "couldn't read that picture" in bad[0].text
    assert run(store.rows("predictions"))[0]["kind"] == "picture"
    for closer in (text.close(), pics.close(), store.close()):
        run(closer)


def test_two_workers_on_postgresql_handle_an_event_once(run, tmp_path):
    migrate(PG_URL)

    async def race():
        salt = tmp_path / "shared-salt"  # the workers share a salt file, never a salt in the database
        a, b = Store(PG_URL, DEFAULT, salt_file=salt), Store(PG_URL, DEFAULT, salt_file=salt)
        try:
            event = _id()
            wins = await asyncio.gather(*(s.claim_event("slack", event) for s in (a, b, a, b)))
            h1, h2 = await a.user_hash("slack", "U1"), await b.user_hash("slack", "U1")
            return wins, h1 == h2
        finally:
            await a.close()
            await b.close()

    wins, same_hash = run(race())
    assert sorted(wins) == [False, False, False, True]
    assert same_hash  # the salt made by one worker is the one the other uses


@pytest.mark.parametrize("url", ["sqlite", PG_URL])
def test_migrations_go_up_and_down(url, tmp_path):
    from bot.store.repository import current_revision

    if url == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'm.sqlite'}"
    migrate(url)
    assert current_revision(url) == "0006"
    channel = _id()[:12]

    async def set_and_read(change: bool):
        store = Store(url, DEFAULT, user_salt="s")
        try:
            if change:
                await store.update_channel("slack", channel, count=7, never=("😘",))
            return await store.channel("slack", channel)
        finally:
            await store.close()

    assert asyncio.run(set_and_read(True)).never == ("😘",)
    migrate(url, "0005", down=True)  # the never-list's column goes, a channel's other settings stay
    assert current_revision(url) == "0005"
    migrate(url)
    back = asyncio.run(set_and_read(False))
    assert back.count == 7 and back.never == ()
    migrate(url, "base", down=True)
    assert current_revision(url) is None
    migrate(url)
    assert current_revision(url) == "0006"


def test_a_grave_message_gets_no_laughing_or_partying_emoji_from_the_bot(core, run):
    """models.grave through the whole core: auto-react (at the default threshold) and
    /emojify hold back 😂 💯 🎉 … for a death or a disaster, and react as before otherwise."""
    from models.grave import HELD_BACK

    run(core.handle(cmd("emojify-admin", "on", user="UADMIN")))
    run(core.handle(cmd("emojify-admin", "threshold 0.2", user="UADMIN")))
    held = set(HELD_BACK)
    acts = run(core.handle(msg("earthquake killed hundreds")))  # 💯 was added before the guard
    added = [e.char for a in acts if isinstance(a, AddReactions) for e in a.emojis]
    assert not set(added) & held
    acts = run(core.handle(msg("my dog died today")))  # what fits is still added
    added = [e.char for a in acts if isinstance(a, AddReactions) for e in a.emojis]
    assert "🐶" in added and not set(added) & held
    reply = run(core.handle(cmd("emojify", "sad news: our colleague Tom died this morning")))[0]
    assert isinstance(reply, Reply) and "😢" in reply.text
    assert not {e for e in held if e in reply.text}
    acts = run(core.handle(msg("merry christmas everyone")))  # not grave: 🎄 as ever
    assert acts[0].emojis[0].char == "🎄"


def test_a_complaint_gets_no_adoring_or_party_emoji_from_the_bot(core, run):
    """models.complaint through the whole core: /emojify and auto-react hold back 😍 😘 😊
    🎉 … for a message that reads negative, and keep what fits it."""
    from models.complaint import DELIGHT

    run(core.handle(cmd("emojify-admin", "on", user="UADMIN")))
    run(core.handle(cmd("emojify-admin", "threshold 0.2", user="UADMIN")))
    held = set(DELIGHT)
    reply = run(core.handle(cmd("emojify", "I hate mondays")))[0]  # 😂 🙄 😍 😭 ❤️ before the guard
    assert isinstance(reply, Reply) and not {e for e in held if e in reply.text}
    acts = run(core.handle(msg("I'm so tired, didn't sleep at all last night")))
    added = [e.char for a in acts if isinstance(a, AddReactions) for e in a.emojis]
    assert "😴" in added and not set(added) & held


def test_a_channels_never_list_keeps_emojis_out_of_what_the_bot_posts(core, ranker, sqlite_url, run):
    """`/emojify-admin never 😘 …`: auto-react and /emojify in that channel take the
    ranking's next emojis instead; other channels are untouched; the list is kept in the
    store, reads Slack's :short_names:, refuses what is no emoji, and `allow` undoes it."""
    text = "happy friday everyone, see you at the bbq"
    admin = lambda words, channel="C1": run(core.handle(cmd("emojify-admin", words, user="UADMIN", channel=channel)))  # noqa: E731
    for channel in ("C1", "C2"):
        admin("on", channel)
        admin("threshold -1", channel)  # every one of the first `count` is added: the list alone decides
    ranked = [r.emoji for r in ranker.rank([text], 20)[0]]
    before = [e.char for e in run(core.handle(msg(text)))[0].emojis]
    assert before == ranked[:3]
    kept_out = ranked[:2]
    short = core.catalog.lookup(kept_out[1]).short_name
    said = admin(f"never {kept_out[0]} :{short}:")[0].text
    assert said.startswith("Done.") and f"Never used in this channel: {kept_out[0]} {kept_out[1]}." in said
    rest = [e for e in ranked if e not in kept_out]
    assert [e.char for e in run(core.handle(msg(text)))[0].emojis] == rest[:3]
    assert [e.char for e in run(core.handle(msg(text, channel="C2")))[0].emojis] == ranked[:3]  # its own list
    reply = run(core.handle(cmd("emojify", text)))[0]
    assert sorted(e.char for e in reply.emojis) == sorted(rest[:5])
    shown, *lines = reply.text.split("\n")
    assert not any(e in shown for e in kept_out) and len(lines) == 6  # five emojis and why two are missing
    assert lines[-1] == f"_Not shown: {kept_out[0]} {kept_out[1]}, kept out of this channel (`/emojify-admin never`)._"
    other = run(core.handle(cmd("emojify", text, channel="C2")))[0]
    assert sorted(e.char for e in other.emojis) == sorted(ranked[:5]) and "Not shown" not in other.text
    # kept in the store: a second worker on the same database reads it
    second = Store(sqlite_url, DEFAULT, user_salt="test-salt")
    assert run(second.channel("slack", "C1")).never == tuple(kept_out)
    run(second.close())
    # listed, shown in status, refused for a stranger and for what is not wholly emojis
    listed = f"Never used in this channel: {kept_out[0]} {kept_out[1]}."
    assert admin("never")[0].text == listed and listed in admin("status")[0].text
    assert "Only admins" in run(core.handle(cmd("emojify-admin", "allow all", user="U2")))[0].text
    bad_words = {"allow 🍕 notanemoji": "notanemoji", "never 😘smooch": "😘smooch", "never heart": "heart"}
    bad_words["never 👍\u200d🦀"] = "👍\u200d🦀"  # a sequence the catalog lacks is no 👍
    bad_words["never = x"] = "x"
    for bad, named in bad_words.items():
        assert admin(bad)[0].text.startswith(f"Not an emoji: {named}. Nothing changed. Give emojis")
    assert run(core.store.channel("slack", "C1")).never == tuple(kept_out)
    assert "`allow all` empties" in admin("allow")[0].text  # usage, nothing changed
    assert "sets this channel's whole never-list" in admin("never =")[0].text
    assert run(core.store.channel("slack", "C1")).never == tuple(kept_out)
    # refused, or changing nothing, on a channel without settings: nothing is written
    admin("never notanemoji", channel="C3")
    admin("allow 🍕", channel="C3")
    assert "C3" not in {r["channel_id"] for r in run(core.store.rows("channel_settings"))}
    # allow one back, then all (in any case)
    admin(f"allow {kept_out[0]}")
    assert [e.char for e in run(core.handle(msg(text)))[0].emojis] == [e for e in ranked if e != kept_out[1]][:3]
    assert admin("allow ALL")[0].text.endswith("No emoji is kept out of this channel.")
    assert [e.char for e in run(core.handle(msg(text)))[0].emojis] == ranked[:3]
    # `never = …` sets the whole list (the playground's form sends it)
    admin("never 🍕")
    assert admin("never = 💋 :kissing_heart:")[0].text.endswith("Never used in this channel: 💋 😘.")
    # every change is audited with what was typed, long lists of names included
    names = " ".join(f":{core.catalog.lookup(e).short_name}:" for e in ranked[:6])
    admin(f"never {names}")
    audit = [(a["action"], a["detail"]) for a in run(core.store.rows("admin_audit")) if a["action"] == "never"]
    assert audit[0] == ("never", f"{kept_out[0]} :{short}:") and audit[-1] == ("never", names)


def test_a_never_list_holds_at_most_a_hundred_emojis(core, run):
    from models.reactions import MAX_NEVER

    admin = lambda words: run(core.handle(cmd("emojify-admin", words, user="UADMIN")))  # noqa: E731
    emojis = [e.char for e in core.catalog][: MAX_NEVER + 1]
    assert admin("never " + " ".join(emojis[:MAX_NEVER]))[0].text.startswith("Done.")
    said = admin(f"never {emojis[MAX_NEVER]}")[0].text
    assert said == f"A never-list holds at most {MAX_NEVER} emojis. Nothing changed."
    said = admin("never = " + " ".join(emojis))[0].text
    assert said == f"{MAX_NEVER + 1} emojis, at most {MAX_NEVER}. Nothing changed."
    assert admin("allow " + " ".join(emojis))[0].text.startswith("Done.")  # a long allow is fine
    admin("never " + " ".join(emojis[:MAX_NEVER]))
    assert len(run(core.store.channel("slack", "C1")).never) == MAX_NEVER
    assert admin(f"never = {emojis[MAX_NEVER]}")[0].text.endswith(f"Never used in this channel: {emojis[MAX_NEVER]}.")


def test_what_is_logged_names_the_version_that_ranked_even_with_a_never_list(sqlite_url, catalog, run):
    """The engine says which version ranked (a promotion may land between ranking and
    logging); taking a never-list out keeps that, for reactions and /emojify alike."""
    from bot.core.engine import Ranking
    from bot.testing.fake_engine import FakeEngine

    class Earlier(FakeEngine):
        version = "v-now"

        async def rank_async(self, text, k=5, candidates=None):
            return Ranking(await super().rank_async(text, k, candidates), "v-ranked")

    store = Store(sqlite_url, ChannelConfig(True, -1.0, 3, learning=True), user_salt="s")
    c = BotCore(store, Earlier(catalog), catalog=catalog, admins=AdminPolicy(user_ids=frozenset({"UADMIN"})))
    run(c.handle(msg("merry christmas everyone")))
    run(c.handle(cmd("emojify", "merry christmas everyone")))
    run(c.handle(cmd("emojify-admin", "never 🎄", user="UADMIN")))
    run(c.handle(msg("merry christmas everyone")))
    run(c.handle(cmd("emojify", "merry christmas everyone")))
    rows = run(store.rows("predictions"))
    assert [r["model_version"] for r in rows] == ["v-ranked"] * 4
    assert "🎄" in rows[0]["emojis"] and "🎄" not in rows[2]["emojis"] + rows[3]["emojis"]
    run(store.close())


def test_a_picture_whose_emojis_are_all_kept_out_gets_none_and_is_told_so(sqlite_url, catalog, run):
    from bot.testing.fake_engine import FakeEngine, FakePictureEngine

    store = Store(sqlite_url, ChannelConfig(True, 0.0, 3, never=("🐸",)), user_salt="s")
    c = BotCore(store, FakeEngine(catalog), FakePictureEngine(), catalog=catalog)
    png = _png()
    acts = run(c.handle(msg("", attachments=(Attachment("p.png", "image/png", len(png), png),))))
    assert [e.char for e in acts[0].emojis] == ["🌳", "💧"]  # the next of what was seen, no 🐶 that was not
    run(store.update_channel("slack", "C1", never=("🐸", "🌳", "💧")))
    acts = run(c.handle(msg("", attachments=(Attachment("p.png", "image/png", len(png), png),))))
    assert len(acts) == 1 and isinstance(acts[0], Reply) and "never-list" in acts[0].text
    assert not any(isinstance(a, AddReactions) for a in acts)
    run(store.close())


def _png() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (0, 160, 0)).save(buf, "PNG")
    return buf.getvalue()
