"""`emojibot bench slack`: the whole Slack path under load, on loopback.

Signed Events API requests go to the running adapter (bolt over aiohttp, the real core,
engine and store); a fake Slack Web API records ``reactions.add``. Events are delivered as
Slack delivers them: a non-2xx answer or a refused connection is retried with
``X-Slack-Retry-Num`` (after 1, 2, 4, 8 and 16 s here; Slack waits minutes), and a tenth
of the events are also sent twice (Slack's retries after a lost answer). Reported:
sustained events/s, p50/p95 from the first send of an event to its first
``reactions.add``, and lost and duplicated reactions (every message should get exactly
``count`` reactions, once; an ``already_reacted`` answer counts as a duplicate).

Faults, in the middle of the run (``--fault``):
- ``db-outage``: the store is PostgreSQL behind a loopback proxy that is cut for
  ``outage_s`` seconds (connections reset, then refused);
- ``sigterm``: the bot is shut down as SIGTERM does in ``serve`` (the socket closes, the
  pipeline drains for ``grace_s``, the rest is handed back to the inbox) and a new bot
  process-equivalent (new core, engine, store and adapter on the same database and port)
  starts after it; Slack's retries and the inbox replay finish the work.
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
PG_TEST_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
SLACK_RETRY_DELAYS = (1.0, 2.0, 4.0, 8.0, 16.0)


class _Bot:
    """One bot "process": store, engine, core, Slack adapter and its HTTP server."""

    def __init__(self, url: str, count: int, ranker, catalog, api: str, token: str, secret: str):
        self.args = (url, count, ranker, catalog, api, token, secret)

    async def start(self, port: int = 0) -> int:
        from bot.adapters.slack import SlackAdapter
        from bot.core.bot import BotCore
        from bot.core.engine import EmojiEngine
        from bot.store.repository import ChannelConfig, Store

        url, count, ranker, catalog, api, token, secret = self.args
        self.store = Store(url, ChannelConfig(True, -1.0, count))  # threshold −1: every message gets `count`
        self.core = BotCore(self.store, EmojiEngine(ranker), catalog=catalog)
        self.adapter = SlackAdapter(self.core, token, secret, base_url=api)
        await self.adapter.start()
        app = web.Application()
        self.adapter.add_routes(app)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", port)
        await site.start()
        return site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self, grace: float) -> dict[str, int]:
        """What SIGTERM does in ``serve``: close the socket, drain, close the rest."""
        for site in list(self.runner.sites):
            await site.stop()
        dropped = await self.core.pipeline.drain(grace)
        handed_back = self.core.pipeline.handed_back
        await self.runner.cleanup()
        await self.adapter.close()
        await self.core.text.close()
        await self.store.close()
        return {"dropped": dropped, "handed_back": handed_back}


async def _bench(
    n: int,
    rate: float,
    count: int,
    artifacts: str | None,
    retry_fraction: float,
    fault: str | None = None,
    database_url: str | None = None,
    outage_s: float = 5.0,
    grace_s: float = 0.5,
) -> dict[str, Any]:
    from bot.store.repository import migrate_async
    from bot.testing.fake_slack import FakeSlack, SlackSender
    from bot.testing.tcp_proxy import TcpProxy
    from models.catalog import EmojiCatalog
    from models.ranker import TextRanker

    secret = "bench-signing-secret"
    catalog = EmojiCatalog.load()
    ranker = TextRanker(artifacts)
    fake = FakeSlack(known_emoji_names={n for e in catalog for n in e.short_names})
    api = await fake.start()
    proxy = None
    fault_log: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        url = database_url or (PG_TEST_URL if fault == "db-outage" else f"sqlite+aiosqlite:///{Path(tmp) / 'b.sqlite'}")
        await migrate_async(url)
        if fault == "db-outage":
            from sqlalchemy.engine import make_url

            u = make_url(url)
            proxy = TcpProxy(u.host or "127.0.0.1", u.port or 5432)
            url = u.set(host="127.0.0.1", port=await proxy.start()).render_as_string(hide_password=False)
        bot = _Bot(url, count, ranker, catalog, api, fake.token, secret)
        port = await bot.start()
        channel = f"CB{random.randrange(16**8):08X}"  # a database kept between runs is not confused
        rng = random.Random(0)
        sent_at: dict[str, float] = {}
        statuses: list[list[int]] = []
        try:
            async with SlackSender(f"http://127.0.0.1:{port}/slack/events", secret) as sender:
                await sender.deliver(
                    {"type": "message", "channel": channel, "user": "U1", "text": "warm up", "ts": "1.000001"}
                )
                await fake.wait_for("reactions.add", count)
                base = len(fake.calls_of("reactions.add"))
                start = time.perf_counter()
                tasks = []
                fault_task = None
                for i in range(n):
                    due = start + i / rate
                    if (wait := due - time.perf_counter()) > 0:
                        await asyncio.sleep(wait)
                    if i == n // 2 and fault is not None:
                        fault_task = asyncio.create_task(_inject(fault, bot, port, proxy, outage_s, grace_s, fault_log))
                    ts = f"{1700000000 + i}.{i:06d}"
                    ev = {
                        "type": "message",
                        "channel": channel,
                        "user": f"U{i % 50}",
                        "text": TEXTS[i % len(TEXTS)],
                        "ts": ts,
                    }
                    sent_at[ts] = time.perf_counter()
                    eid = f"EvB{i:08d}{channel}"
                    tasks.append(asyncio.create_task(sender.deliver(ev, eid, retry_delays=SLACK_RETRY_DELAYS)))
                    if rng.random() < retry_fraction:
                        tasks.append(asyncio.create_task(sender.deliver(ev, eid, retry_delays=SLACK_RETRY_DELAYS)))
                statuses = await asyncio.gather(*tasks)
                if fault_task is not None:
                    await fault_task
                try:
                    await fake.wait_for("reactions.add", base + n * count, timeout=120)
                except TimeoutError:
                    pass
                await asyncio.sleep(1.0)  # late duplicates, if any, would land now
                elapsed = max(c.at for c in fake.calls_of("reactions.add")) - start
        finally:
            await bot.stop(grace=5.0)
            if proxy is not None:
                await proxy.close()
            await fake.close()
    per_msg: dict[str, list[float]] = {}
    for c in fake.calls_of("reactions.add"):
        if c.args["timestamp"] in sent_at:
            per_msg.setdefault(c.args["timestamp"], []).append(c.at)
    lat = np.asarray([min(v) - sent_at[ts] for ts, v in per_msg.items()]) * 1000.0
    lost = sum(max(0, count - len(per_msg.get(ts, []))) for ts in sent_at)
    dup = sum(max(0, len(v) - count) for v in per_msg.values()) + len(fake.calls_of("already_reacted"))
    out = {
        "events": n,
        "retried_events": len(tasks) - n,
        "target_rate": rate,
        "fault": fault or "none",
        "sustained_events_per_s": round(n / elapsed, 1),
        "event_to_reaction_p50_ms": round(float(np.percentile(lat, 50)), 1),
        "event_to_reaction_p95_ms": round(float(np.percentile(lat, 95)), 1),
        "event_to_reaction_max_ms": round(float(lat.max()), 1),
        "reactions_expected": n * count,
        "reactions_lost": int(lost),
        "reactions_duplicated": int(dup),
        "deliveries_retried_by_slack": sum(len(s) - 1 for s in statuses),
        "deliveries_never_acked": sum(1 for s in statuses if not 200 <= s[-1] < 300),
        **fault_log,
    }
    return out


async def _inject(fault: str, bot: _Bot, port: int, proxy, outage_s: float, grace_s: float, out: dict) -> None:
    t0 = time.perf_counter()
    if fault == "db-outage":
        await proxy.cut()
        await asyncio.sleep(outage_s)
        await proxy.restore()
        out["outage_s"] = round(time.perf_counter() - t0, 2)
        out["refused_while_down"] = int(bot.core.metrics.count("slack", "refused"))
    elif fault == "sigterm":
        stopped = await bot.stop(grace_s)
        new_port = await bot.start(port)
        assert new_port == port
        out["restart_s"] = round(time.perf_counter() - t0, 2)
        out["dropped_at_shutdown"] = stopped["dropped"]
        out["handed_back_at_shutdown"] = stopped["handed_back"]
    else:
        raise ValueError(f"unknown fault {fault!r}: db-outage or sigterm")


def bench_slack(
    n: int = 1000,
    rate: float = 150.0,
    count: int = 3,
    artifacts: str | None = None,
    retry_fraction: float = 0.1,
    fault: str | None = None,
    database_url: str | None = None,
    outage_s: float = 5.0,
) -> dict[str, Any]:
    return asyncio.run(_bench(n, rate, count, artifacts, retry_fraction, fault, database_url, outage_s))
