"""Learning from reactions, end to end: people react in a channel that learns, an admin
retrains, the gate decides, the bot switches. Real store (SQLite), real models, the real
`emojibot retrain` process."""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys

import pytest

from bot.core.events import CommandInvoked
from bot.core.models import ModelManager
from bot.core.engine import EmojiEngine
from bot.store.repository import ChannelConfig
from bot.testing.people import chatter_messages, feed, food_messages
from models.artifacts import Registry
from models.ranker import TextRanker

ADMIN = "U-admin"
PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


def _rank_of(ranker: TextRanker, text: str, emoji: str) -> int:
    return [r.emoji for r in ranker.rank([text], k=len(ranker.chars))[0]].index(emoji) + 1


async def _learning_core(make_core, tmp_path, data_dir):
    engine = EmojiEngine(TextRanker())
    core = await make_core(default=ChannelConfig(True, 0.2, 3), text=engine, admins=(ADMIN,))
    core.models = ModelManager(core.store, engine, models_dir=tmp_path / "models", data_dir=str(data_dir))
    await core.store.update_channel("web", "C-learn", learning=True)
    return core


def _admin(core, text: str, n: int = 0):
    return core.handle(CommandInvoked("web", f"adm-{text}-{n}", "C-learn", ADMIN, "emojify-admin", text))


def _retrain_cli(core, tmp_path, data_dir, *extra: str) -> dict:
    env = dict(os.environ, EMOJIBOT_DATABASE_URL=core.store.url)
    out = subprocess.run(
        [sys.executable, "-m", "bot.cli", "retrain", "--json", "--quiet", "--data-dir", str(data_dir),
         "--models-dir", str(tmp_path / "models"), *extra],
        capture_output=True, text=True, env=env, timeout=600, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout)


async def test_people_teach_it_pizza_and_the_admin_retrain_promotes_it(make_core, tmp_path, data_dir, ranker):
    core = await _learning_core(make_core, tmp_path, data_dir)
    rng = random.Random(5)
    people = [f"U{i}" for i in range(30)]
    food = food_messages(300)
    fresh = food_messages(40, skip=300)  # of the same kind, never stored
    # The shipped model does not answer 🍕 for these: outside its top 5 for every one.
    assert min(_rank_of(ranker, t, "🍕") for t in food + fresh) > 5
    rows = []
    for t in food:
        author = rng.choice(people)
        rows.append((t, author, [(u, "🍕") for u in rng.sample([p for p in people if p != author], 2)]))
    await feed(core, rows)

    reply = (await _admin(core, "retrain"))[0]
    assert "Retraining started" in reply.text
    assert "already running" in (await _admin(core, "retrain", 1))[0].text  # one at a time
    assert await asyncio.wait_for(core.models.wait_retrain(), 600) == 0
    status = (await _admin(core, "retrain status"))[0].text
    assert "*promoted*" in status and "held-out feedback MRR" in status

    before = core.model_version
    assert await core.models.sync() not in (None, before)  # the bot follows the store's pointer
    new = core.text.ranker
    assert [_rank_of(new, t, "🍕") <= 3 for t in fresh].count(True) >= 0.9 * len(fresh)
    assert all(_rank_of(new, t, "🍕") <= 3 for t in food[-60:])  # the retrain's held-out newest 20%
    v = Registry(tmp_path / "models").versions()[-1]
    assert v["version"] == core.model_version and v["status"] == "promoted" and v["parent"] == before
    # and the rest of what it knew stays: the gate checked the validation figures
    cand, cur = v["figures"]["candidate"], v["figures"]["current"]
    assert cand["catalog_val"]["mrr"] >= cur["catalog_val"]["mrr"] - 0.005


async def test_one_person_reacting_500_times_does_not_steer_it(make_core, tmp_path, data_dir, ranker):
    core = await _learning_core(make_core, tmp_path, data_dir)
    rng = random.Random(3)
    chatter = chatter_messages(500)
    assert all(_rank_of(ranker, t, "🤮") > 5 for t in chatter)
    rows = [(t, "U-author", [("U-troll", "🤮")]) for t in chatter]
    # the others react as usual (and two of them once with 🤮 too)
    rows += [(t, "U0", [(f"U{rng.randrange(1, 20)}", "🍕")]) for t in food_messages(150)]
    rows += [(chatter_messages(2, skip=500)[i], "U0", [(u, "🤮")]) for i, u in enumerate(("U1", "U2"))]
    await feed(core, rows)
    result = _retrain_cli(core, tmp_path, data_dir, "--no-promote")
    assert result["feedback"]["people_capped"] == 1
    cand = TextRanker(Registry(tmp_path / "models").folder(result["candidate_version"]))
    probes = chatter + food_messages(50) + ["so tired today", "we won the game!!", "happy birthday sis"]
    tops = cand.rank(probes, k=5)
    assert not any("🤮" in [r.emoji for r in top] for top in tops)
    assert await core.store.current_model() is None  # --no-promote: nothing switched


async def test_a_candidate_that_lost_validation_quality_is_rejected(make_core, tmp_path, data_dir):
    core = await _learning_core(make_core, tmp_path, data_dir)
    rng = random.Random(7)
    await feed(core, [(t, "U0", [(f"U{rng.randrange(1, 9)}", "🍕")]) for t in food_messages(200)])
    # A rate a hundred times too high wrecks what the model knew: the gate must see it.
    result = _retrain_cli(core, tmp_path, data_dir, "--learning-rate", "0.1", "--epochs", "3", "--original-rows", "3000")
    assert result["verdict"] == "rejected"
    assert any("fell from" in r for r in result["reasons"])
    assert await core.store.current_model() is None
    assert Registry(tmp_path / "models").status(result["candidate_version"])["status"] == "rejected"
    runs = await core.store.runs()
    assert runs[0]["status"] == "rejected" and runs[0]["candidate_version"] == result["candidate_version"]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_only_one_retrain_holds_the_lock(make_core, backend):
    core = await make_core(url=PG_URL if backend == "postgresql" else None)
    other = await make_core(url=core.store.url)
    async with core.store.retrain_lock() as first:
        async with other.store.retrain_lock() as second:
            assert first and not second
    async with other.store.retrain_lock() as again:
        assert again  # released
