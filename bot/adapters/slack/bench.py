"""`emojibot bench slack`: the whole Slack path under load, on loopback.

Signed Events API requests go to the running adapter (bolt over aiohttp, the real core,
engine and a SQLite store); a fake Slack Web API records ``reactions.add``. A tenth of
the events are sent twice (Slack's retries). Reported: sustained events/s, p50/p95 from
sending an event to its first ``reactions.add``, and counts of lost and duplicated
reactions (every message should get exactly ``count`` reactions, once).
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from aiohttp import web

TEXTS = [
    "merry christmas everyone",
    "pizza night with friends",
    "we won the championship!!!",
    "so tired of this rain",
    "happy birthday my friend",
    "just landed in Barcelona, the beach is unreal",
    "this is hilarious lol",
    "my dog is the cutest",
    "monday again...",
    "the concert last night was fire",
]


async def _bench(n: int, rate: float, count: int, artifacts: str | None, retry_fraction: float) -> dict[str, Any]:
    from aiohttp.test_utils import TestServer

    from bot.adapters.slack import SlackAdapter
    from bot.core.bot import BotCore
    from bot.core.engine import EmojiEngine
    from bot.store.repository import ChannelConfig, Store, migrate_async
    from bot.testing.fake_slack import FakeSlack, SlackSender
    from models.catalog import EmojiCatalog
    from models.ranker import TextRanker

    secret = "bench-signing-secret"
    catalog = EmojiCatalog.load()
    fake = FakeSlack(known_emoji_names={n for e in catalog for n in e.short_names})
    api = await fake.start()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.sqlite'}"
        await migrate_async(url)
        store = Store(url, ChannelConfig(True, -1.0, count))  # threshold −1: every message gets `count`
        core = BotCore(store, EmojiEngine(TextRanker(artifacts)), catalog=catalog)
        adapter = SlackAdapter(core, fake.token, secret, base_url=api)
        await adapter.start()
        app = web.Application()
        adapter.add_routes(app)
        server = TestServer(app)
        await server.start_server()
        rng = random.Random(0)
        sent_at: dict[str, float] = {}
        try:
            async with SlackSender(str(server.make_url("/slack/events")), secret) as sender:
                await sender.event(
                    {"type": "message", "channel": "CWARM", "user": "U1", "text": "warm up", "ts": "1.000001"}
                )
                await fake.wait_for("reactions.add", count)
                base = len(fake.calls_of("reactions.add"))
                start = time.perf_counter()
                tasks = []
                for i in range(n):
                    due = start + i / rate
                    if (wait := due - time.perf_counter()) > 0:
                        await asyncio.sleep(wait)
                    ts = f"{1700000000 + i}.{i:06d}"
                    ev = {
                        "type": "message",
                        "channel": "C1",
                        "user": f"U{i % 50}",
                        "text": TEXTS[i % len(TEXTS)],
                        "ts": ts,
                    }
                    sent_at[ts] = time.perf_counter()
                    eid = f"EvB{i:08d}"
                    tasks.append(asyncio.create_task(sender.event(ev, event_id=eid)))
                    if rng.random() < retry_fraction:
                        tasks.append(asyncio.create_task(sender.event(ev, event_id=eid, retry=1)))
                statuses = await asyncio.gather(*tasks)
                try:
                    await fake.wait_for("reactions.add", base + n * count, timeout=60)
                except TimeoutError:
                    pass
                elapsed = max(c.at for c in fake.calls_of("reactions.add")) - start
        finally:
            await server.close()
            await adapter.close()
            await core.text.close()
            await store.close()
            await fake.close()
    per_msg: dict[str, list[float]] = {}
    for c in fake.calls_of("reactions.add"):
        if c.args["timestamp"] in sent_at:
            per_msg.setdefault(c.args["timestamp"], []).append(c.at)
    lat = np.asarray([min(v) - sent_at[ts] for ts, v in per_msg.items()]) * 1000.0
    lost = sum(max(0, count - len(per_msg.get(ts, []))) for ts in sent_at)
    dup = sum(max(0, len(v) - count) for v in per_msg.values()) + len(fake.calls_of("already_reacted"))
    return {
        "events": n,
        "retried_events": len(tasks) - n,
        "target_rate": rate,
        "sustained_events_per_s": round(n / elapsed, 1),
        "event_to_reaction_p50_ms": round(float(np.percentile(lat, 50)), 1),
        "event_to_reaction_p95_ms": round(float(np.percentile(lat, 95)), 1),
        "reactions_expected": n * count,
        "reactions_lost": int(lost),
        "reactions_duplicated": int(dup),
        "http_non_200": sum(1 for s, _ in statuses if s != 200),
    }


def bench_slack(
    n: int = 1000, rate: float = 150.0, count: int = 3, artifacts: str | None = None, retry_fraction: float = 0.1
) -> dict[str, Any]:
    return asyncio.run(_bench(n, rate, count, artifacts, retry_fraction))
