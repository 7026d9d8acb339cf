"""`emojibot bench retrain`: how long learning from 10,000 reactions takes, and what it
changes.

A fresh SQLite store receives ``events`` reactions the way the core logs them (messages
from a channel that learns, each with its author, and people's reactions): TweetEval train
tweets (which the SQAM never trained on), each reacted to with the emoji its writer used by
two of 200 people. Then :func:`bot.learn.run_retrain` runs as `emojibot retrain` does:
export, triplets, fine-tuning, the gate. Reported: the time of each step and the
validation figures of the current and the new version.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
from pathlib import Path


def bench_retrain(data_dir, artifacts=None, events: int = 10_000, seed: int = 0, progress=None) -> dict:
    from bot.store.repository import migrate

    with tempfile.TemporaryDirectory(prefix="emojibot-bench-retrain-") as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.sqlite'}"
        migrate(url)
        return asyncio.run(_bench(url, Path(tmp), data_dir, artifacts, events, seed, progress))


async def _bench(url: str, tmp: Path, data_dir, artifacts, events: int, seed: int, progress) -> dict:
    from bot.learn import run_retrain
    from bot.store.repository import ChannelConfig, Store
    from models.artifacts import Registry
    from models.catalog import EmojiCatalog
    from training.data import load_tweeteval
    from training.retrain import RetrainSettings

    rng = random.Random(seed)
    tweets = load_tweeteval(data_dir, "train")
    n_messages = events // 2
    if n_messages > len(tweets.texts):
        raise ValueError(f"at most {2 * len(tweets.texts):,} events: TweetEval train has {len(tweets.texts):,} tweets")
    people = [f"U{i}" for i in range(200)]
    catalog = EmojiCatalog.load()
    label_chars = [catalog.lookup(e).char for e in tweets.label_emojis]  # folded, as the core logs reactions
    store = Store(url, ChannelConfig(False, 0.2, 3, True), user_salt="bench-retrain-salt")
    try:
        t0 = time.perf_counter()
        order = rng.sample(range(len(tweets.texts)), n_messages)

        async def one(i: int, idx: int) -> None:
            author = rng.choice(people)
            mid = f"m{i}"
            await store.log_prediction("web", "C-bench", mid, "text", tweets.texts[idx], "bench", [], [], author)
            emoji = label_chars[tweets.labels[idx]]
            for user in rng.sample([p for p in people if p != author], 2):
                await store.log_reaction("web", "C-bench", mid, emoji, True, user, event_id=f"{mid}-{user}")

        for start in range(0, n_messages, 200):
            await asyncio.gather(*(one(i, order[i]) for i in range(start, min(start + 200, n_messages))))
        feed_s = time.perf_counter() - t0
        registry = Registry(tmp / "models", artifacts)
        result = await run_retrain(store, registry, str(data_dir), RetrainSettings(), "bench", True, progress)
    finally:
        await store.close()

    def figures(f: dict) -> dict:
        return {
            "catalog_val_mrr": f["catalog_val"]["mrr"],
            "catalog_val_top5": f["catalog_val"]["top5_accuracy"],
            "catalog_val_macro_recall_at_5": f["catalog_val"]["macro_recall_at_5"],
            "tweeteval_val_macro_f1": f["tweeteval_val_macro_f1"],
            "heldout_feedback_mrr": round(f["feedback"]["mrr"], 4) if f.get("feedback") else None,
        }

    return {
        "feedback_events": n_messages * 2,
        "messages": n_messages,
        "people": len(people),
        "store_seconds": round(feed_s, 1),
        "export_and_triplets_seconds": result["seconds"]["export_and_triplets"],
        "retrain_seconds": result["seconds"]["retrain"],
        "gate_seconds": result["seconds"]["gate"],
        "total_seconds": result["seconds"]["total"],
        "examples": result["examples"],
        "before": figures(result["figures"]["current"]),
        "after": figures(result["figures"]["candidate"]),
        "verdict": result["verdict"],
        "reasons": result["reasons"],
    }
