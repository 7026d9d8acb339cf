"""Faults at the worst moment, through the Slack adapter and a fake Slack on loopback, with
real databases: PostgreSQL cut off by a proxy, a full SQLite file, a read-only one, a
poisoned row in a group commit, a shutdown with pictures in flight. Whatever Slack was
told arrived is answered exactly once."""

import asyncio
import uuid

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy import event as sa_event

from bot.adapters.slack import SlackAdapter
from bot.store.repository import ChannelConfig, StoreUnavailable, migrate_async
from bot.testing.fake_slack import FakeSlack, SlackSender
from bot.testing.tcp_proxy import TcpProxy

SECRET = "fault-tests-signing-secret"
PG = ("127.0.0.1", 5432)
REACTIONS = 2
DEFAULT = ChannelConfig(True, -1.0, REACTIONS)  # every message gets exactly REACTIONS reactions


class SlackStack:
    """Fake Slack ⇄ adapter (HTTP Events API) ⇄ core over one database URL."""

    def __init__(self, make_core, url=None, pictures=None, fake_port=0):
        self.make_core, self.url, self.pictures, self.fake_port = make_core, url, pictures, fake_port

    async def __aenter__(self):
        self.fake = FakeSlack()
        api = await self.fake.start(port=self.fake_port)
        self.core = await self.make_core(url=self.url, default=DEFAULT, pictures=self.pictures)
        self.core.pipeline.retry_delays = (0.2, 0.5, 1.0)
        self.core.pipeline.replay_interval = 0.2
        self.adapter = SlackAdapter(self.core, self.fake.token, SECRET, base_url=api)
        await self.adapter.start()
        app = web.Application()
        self.adapter.add_routes(app)
        self.server = TestServer(app)
        await self.server.start_server()
        self.sender = await SlackSender(str(self.server.make_url("/slack/events")), SECRET).__aenter__()
        return self

    async def stop_server(self, grace: float) -> int:
        """What SIGTERM does in ``serve``: stop listening, drain, close the adapter."""
        await self.server.close()
        dropped = await self.core.pipeline.drain(grace)
        await self.adapter.close()
        return dropped

    async def __aexit__(self, *exc):
        await self.sender.__aexit__(None, None, None)
        await self.server.close()
        await self.core.pipeline.drain(0.5)
        await self.adapter.close()
        await self.fake.close()

    def reactions_by_message(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for c in self.fake.calls_of("reactions.add"):
            out.setdefault(c.args["timestamp"], []).append(c.args["name"])
        return out


RUN_CHANNEL = "C" + uuid.uuid4().hex[:10].upper()  # PostgreSQL's `test` database outlives a test run


def message(i: int, prefix: str = "") -> dict:
    ts = f"{1700000000 + i}.{uuid.uuid4().int % 1_000_000:06d}"
    text = f"{prefix}pizza party number {i}"
    return {"type": "message", "channel": RUN_CHANNEL, "user": f"U{i}", "text": text, "ts": ts}


async def wait_until(predicate, timeout=20.0):
    for _ in range(int(timeout / 0.05)):
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return predicate()


def all_answered(stack: SlackStack, sent: list[dict]):
    def check() -> bool:
        got = stack.reactions_by_message()
        return all(len(got.get(ev["ts"], [])) >= REACTIONS for ev in sent)

    return check


def assert_each_answered_once(stack: SlackStack, sent: list[dict]) -> None:
    got = stack.reactions_by_message()
    missing = [ev["ts"] for ev in sent if len(got.get(ev["ts"], [])) < REACTIONS]
    doubled = [ts for ts, names in got.items() if len(names) != len(set(names))]
    assert not missing, f"{len(missing)} of {len(sent)} messages lost"
    assert not doubled and not stack.fake.calls_of("already_reacted")


async def test_postgresql_cut_off_mid_run_loses_no_event(make_core):
    proxy = TcpProxy(*PG)
    port = await proxy.start()
    await migrate_async("postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{port}/test"
    try:
        async with SlackStack(make_core, url) as stack:
            before = [message(i, "before ") for i in range(5)]
            assert [(await stack.sender.deliver(ev))[-1] for ev in before] == [200] * 5
            await proxy.cut()
            during = [message(i, "during ") for i in range(10)]
            tries = [asyncio.create_task(stack.sender.deliver(ev, retry_delays=(0.5, 1, 2, 4))) for ev in during]
            await asyncio.sleep(1.5)
            refused = stack.core.metrics.count("slack", "refused")
            await proxy.restore()
            statuses = await asyncio.gather(*tries)
            assert refused >= 10  # Slack was told 503 while the store could not take them...
            assert all(s[0] == 503 and s[-1] == 200 for s in statuses)  # ...and its retry got in
            await wait_until(all_answered(stack, before + during))
            assert_each_answered_once(stack, before + during)
    finally:
        await proxy.close()


@pytest.mark.parametrize("fault", ["disk full", "read-only"])
async def test_a_full_or_read_only_sqlite_file_refuses_events_until_it_is_fixed(make_core, fault):
    async with SlackStack(make_core) as stack:
        store = stack.core.store
        ok = message(0)
        assert (await stack.sender.deliver(ok))[-1] == 200

        def break_it(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            if fault == "disk full":  # SQLITE_FULL: no page may be added to the file
                cur.execute("PRAGMA page_count")
                pages = cur.fetchone()[0]
                cur.execute(f"PRAGMA max_page_count={pages}")
            else:  # SQLITE_READONLY: "attempt to write a readonly database"
                cur.execute("PRAGMA query_only=ON")
            cur.close()

        sa_event.listen(store.engine.sync_engine, "connect", break_it)
        await store.engine.dispose()
        if fault == "read-only":
            with pytest.raises(StoreUnavailable):
                await store.check_writable()
        evs = [message(i, "while broken ") for i in range(1, 40)]  # enough rows to need new pages
        ids = [f"EvFULL{uuid.uuid4().hex}" for _ in evs]  # Slack resends an event under its own id
        first = await asyncio.gather(
            *(stack.sender.deliver(ev, e, retry_delays=()) for ev, e in zip(evs, ids, strict=False))
        )
        refused = sum(s == [503] for s in first)  # not acked: Slack will send them again
        # read-only refuses every write; a full file still fits a few rows in its last page
        assert refused == len(evs) if fault == "read-only" else refused >= 30, first
        assert all(s in ([503], [200]) for s in first)
        sa_event.remove(store.engine.sync_engine, "connect", break_it)
        await store.engine.dispose()
        again = await asyncio.gather(*(stack.sender.deliver(ev, e) for ev, e in zip(evs, ids, strict=False)))
        assert all(s[-1] == 200 for s in again)
        await wait_until(all_answered(stack, [ok, *evs]))
        assert_each_answered_once(stack, [ok, *evs])


async def test_poisoned_rows_from_the_playground_do_not_fail_slack_events(make_core):
    """A NUL (PostgreSQL refuses it in text) and a lone surrogate (UTF-8 cannot encode it)
    arrive with 100 Slack events in the same group commits: every event is answered."""
    from bot.core.events import MessageCreated

    await migrate_async("postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    async with SlackStack(make_core, "postgresql+asyncpg://postgres@127.0.0.1:5432/test") as stack:
        core = stack.core
        await core.store.update_channel("web", "playground", auto_react=True, learning=True)  # texts are kept
        evs = [message(i, "mixed ") for i in range(100)]
        poison = [
            MessageCreated("web", uuid.uuid4().hex, "playground", uuid.uuid4().hex, "w", text)
            for text in ("nul \x00 inside", "lone \ud83d surrogate", "x" * 50_000 + "\x00")
        ]
        results = await asyncio.gather(
            *(stack.sender.deliver(ev, retry_delays=()) for ev in evs),
            *(core.handle(p) for p in poison),
            return_exceptions=True,
        )
        assert not [r for r in results if isinstance(r, BaseException)]
        assert all(r == [200] for r in results[:100])
        await wait_until(all_answered(stack, evs))
        assert_each_answered_once(stack, evs)
        stored = {r["message_id"]: r["text"] for r in await core.store.rows("predictions") if r["platform"] == "web"}
        mine = [stored[p.message_id] for p in poison]
        assert mine[0] == "nul  inside" and "\x00" not in mine[2] and len(mine[2]) == 2000
        assert mine[1].encode("utf-8")  # stored as valid text


async def test_a_refused_row_fails_only_its_own_caller(make_core):
    """PostgreSQL refuses NaN in a JSON column: that caller gets the error, the 50 claims
    committed in the same batch are all answered."""
    await migrate_async("postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    core = await make_core(url="postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    store = core.store
    ids = [uuid.uuid4().hex for _ in range(50)]
    results = await asyncio.gather(
        *(store.claim_event("slack", i) for i in ids[:25]),
        store.log_prediction("slack", "C9", uuid.uuid4().hex, "text", "t", "v", ["🎉"], [float("nan")]),
        *(store.claim_event("slack", i) for i in ids[25:]),
        return_exceptions=True,
    )
    assert isinstance(results[25], Exception) and not isinstance(results[25], StoreUnavailable)
    assert results[:25] + results[26:] == [True] * 50


async def test_shutdown_with_pictures_in_flight_hands_them_back_and_the_next_start_answers_them(make_core, tmp_path):
    import io

    from PIL import Image

    from bot.testing.fake_engine import FakePictureEngine

    url = f"sqlite+aiosqlite:///{tmp_path / 'restart.sqlite'}"
    buf = io.BytesIO()
    Image.new("RGB", (320, 240), (30, 160, 60)).save(buf, "JPEG")
    async with SlackStack(make_core, url, pictures=FakePictureEngine(delay=30.0)) as first:
        first.fake.files["frog.jpg"] = buf.getvalue()
        evs = []
        for i in range(8):
            f = {
                "id": f"F{i}",
                "name": "frog.jpg",
                "mimetype": "image/jpeg",
                "size": len(buf.getvalue()),
                "url_private": first.fake.file_url("frog.jpg"),
            }
            evs.append({**message(i, "picture "), "subtype": "file_share", "files": [f]})
        ids = [f"EvPIC{i}{uuid.uuid4().hex[:8]}" for i in range(8)]
        acked = [(await first.sender.deliver(ev, event_id=e))[-1] for ev, e in zip(evs, ids, strict=True)]
        assert acked == [200] * 8
        await asyncio.sleep(0.3)
        dropped = await first.stop_server(grace=0.5)  # SIGTERM: 0.5 s is not enough for them
        assert dropped == 0 and first.core.pipeline.handed_back == 8
        assert first.fake.calls_of("files.completeUploadExternal") == []
        pending = [r for r in await first.core.store.rows("processed_events") if r["status"] == "pending"]
        assert len(pending) == 8
        files = dict(first.fake.files)
        port = int(first.fake.base_url.rsplit(":", 1)[1])

    # The next start (same database, Slack at the same address): Slack's retries are not
    # dropped as duplicates, and the replayer answers what nobody resends.
    async with SlackStack(make_core, url, pictures=FakePictureEngine(delay=0.0), fake_port=port) as second:
        second.fake.files.update(files)
        statuses = await asyncio.gather(
            *(second.sender.deliver(ev, event_id=e) for ev, e in zip(evs[:2], ids, strict=False))
        )
        assert all(s[-1] == 200 for s in statuses)
        await wait_until(lambda: len(second.fake.calls_of("files.completeUploadExternal")) >= 8, timeout=30)
        threads = sorted(s["thread_ts"] for s in second.fake.shared)
        assert threads == sorted(ev["ts"] for ev in evs)
        # the last upload is the last action: each event is marked done right after it
        for _ in range(100):
            done = [r["status"] for r in await second.core.store.rows("processed_events")]
            if done.count("done") >= 8 and "pending" not in done:
                break
            await asyncio.sleep(0.1)
        assert done.count("done") >= 8 and "pending" not in done


class RecordingSurface:
    """A platform whose gateway never resends (as Discord's): records what it is asked to do."""

    platform = "gateway"

    def __init__(self):
        self.done: list = []

    async def hydrate(self, event):
        return event

    async def act(self, action, event):
        self.done.append(action)


async def test_an_event_that_arrives_while_the_store_is_down_waits_in_memory_until_it_is_back(make_core):
    from bot.core.events import MessageCreated

    proxy = TcpProxy(*PG)
    port = await proxy.start()
    await migrate_async("postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    try:
        core = await make_core(url=f"postgresql+asyncpg://postgres@127.0.0.1:{port}/test", default=DEFAULT)
        core.pipeline.replay_interval = 0.2
        surface = RecordingSurface()
        core.pipeline.register(surface)
        await core.pipeline.start()
        await proxy.cut()
        events = [
            MessageCreated("gateway", uuid.uuid4().hex, RUN_CHANNEL, uuid.uuid4().hex, "U1", f"pizza {i}")
            for i in range(3)
        ]
        assert all([await core.pipeline.submit(e, hold=True) for e in events])
        assert core.pipeline.held == 3 and surface.done == []
        await proxy.restore()
        assert await wait_until(lambda: core.metrics.count("gateway", "handled") == 3)
        assert core.pipeline.held == 0 and len(surface.done) == 3
        # A shutdown during an outage drops what is still only in memory, and says so.
        await proxy.cut()
        await core.pipeline.submit(MessageCreated("gateway", uuid.uuid4().hex, RUN_CHANNEL, "m", "U1", "x"), hold=True)
        assert await core.pipeline.drain(0.5) == 1 and core.metrics.count("gateway", "dropped") == 1
    finally:
        await proxy.close()


async def test_held_events_count_and_survive_while_a_replay_is_stuck_or_stopped(make_core, monkeypatch):
    """The replayer takes a held event out of memory only once the store has it: while the
    store hangs on it `held` still counts every one (it read 1 of 3 on a loaded machine), and
    a drain that stops the replayer there loses none (they vanished with the cancelled
    replay) but makes them durable. The store is the real SQLite one; its accept_event is
    failed or held up in front of it."""
    from bot.core.events import MessageCreated

    core = await make_core(default=DEFAULT)
    pipeline = core.pipeline
    pipeline.replay_interval = 0.05
    real = pipeline.store.accept_event
    down, stuck, waiting = True, asyncio.Event(), []

    async def accept_event(platform, event_id, *args, **kw):
        if down:
            raise StoreUnavailable("the database is down")
        waiting.append(event_id)
        await stuck.wait()
        return await real(platform, event_id, *args, **kw)

    monkeypatch.setattr(pipeline.store, "accept_event", accept_event)
    events = [
        MessageCreated("gateway", uuid.uuid4().hex, RUN_CHANNEL, uuid.uuid4().hex, "U1", f"taco {i}") for i in range(3)
    ]
    for e in events:
        assert await pipeline.submit(e, hold=True)  # held, and the replayer started
    assert pipeline.held == 3
    down = False
    assert await wait_until(lambda: bool(waiting))  # the replayer is inside the store now
    assert pipeline.held == 3
    drain = asyncio.create_task(pipeline.drain(5.0))  # stops the replayer, then one last try
    assert await wait_until(lambda: pipeline._replayer.done() and len(waiting) > 1)
    assert pipeline.held == 3
    stuck.set()
    assert await drain == 0 and pipeline.held == 0 and core.metrics.count("gateway", "dropped") == 0
    due = await pipeline.store.take_due_events(["gateway"], lease=60.0)  # durable: the next start runs them
    assert {d.event_id for d in due} >= {e.event_id for e in events}


async def test_an_event_that_arrives_during_a_drain_is_stored_and_the_next_start_answers_it(
    make_core, tmp_path, monkeypatch
):
    """A Discord gateway stays connected while the bot drains (up to the grace period and
    the finish time), and never resends: an event it delivers then is stored, due at once,
    and the next start answers it (it was refused and lost). With the store down as well it
    is counted dropped, so `serve` exits non-zero; a Slack event is refused, which Slack
    resends."""
    from bot.core.events import MessageCreated
    from bot.core.pipeline import ShuttingDown

    url = f"sqlite+aiosqlite:///{tmp_path / 'late.sqlite'}"
    first = await make_core(url=url, default=DEFAULT)
    assert await first.pipeline.drain(0.5) == 0
    late = MessageCreated("gateway", uuid.uuid4().hex, RUN_CHANNEL, uuid.uuid4().hex, "U1", "taco tuesday")
    assert await first.pipeline.submit(late, hold=True)
    assert first.pipeline.handed_back >= 1 and first.pipeline.dropped == 0 and first.pipeline.in_flight == 0
    await first.pipeline.submit(late, hold=True)  # the gateway's duplicate stays one row
    rows = [r for r in await first.store.rows("processed_events") if r["event_id"] == late.event_id]
    assert [r["status"] for r in rows] == ["pending"]

    real = first.pipeline.store.accept_event

    async def down(*args, **kw):
        raise StoreUnavailable("the database is down")

    monkeypatch.setattr(first.pipeline.store, "accept_event", down)
    slack = MessageCreated("slack", uuid.uuid4().hex, RUN_CHANNEL, uuid.uuid4().hex, "U1", "x")
    with pytest.raises(StoreUnavailable):
        await first.pipeline.submit(slack)
    with pytest.raises(ShuttingDown):
        await first.pipeline.submit(MessageCreated("gateway", uuid.uuid4().hex, RUN_CHANNEL, "m", "U1", "y"), hold=True)
    assert first.pipeline.dropped == 1 and first.metrics.count("gateway", "dropped") == 1
    monkeypatch.setattr(first.pipeline.store, "accept_event", real)

    second = await make_core(url=url, default=DEFAULT)  # the next start, on the same database
    second.pipeline.replay_interval = 0.05
    surface = RecordingSurface()
    second.pipeline.register(surface)
    await second.pipeline.start()
    assert await wait_until(lambda: second.metrics.count("gateway", "handled") == 1)
    assert len(surface.done) == 1
    await second.pipeline.drain(0.5)


class FlakyReplies(RecordingSurface):
    """A gateway whose first reply fails with a fault worth retrying (a 5xx, a reset)."""

    def __init__(self, failures: int = 1):
        super().__init__()
        self.failures = failures

    async def act(self, action, event):
        from bot.core.events import Reply

        if isinstance(action, Reply) and self.failures:
            self.failures -= 1
            raise ConnectionResetError("the platform reset the connection")
        await super().act(action, event)


async def test_a_picture_whose_reply_fails_once_is_answered_once(make_core, ranker, data_dir):
    """The retry carries out the first decision: the picture model draws new samples each
    time it is asked, so deciding again gave other emojis and percentages, which no earlier
    action matched, and a second set of reactions (and a second prediction row) followed.
    The real text and picture engines, a real photo, the real SQLite store."""
    import numpy as np

    from bot.core.engine import EmojiEngine, PictureEngine
    from bot.core.events import AddReactions, Attachment, MessageCreated, Reply
    from models.picture import PictureModel

    z = np.load(data_dir / "tinyimagenet_emoji" / "train.npz")
    photo = z["jpeg"][z["offsets"][0] : z["offsets"][1]].tobytes()
    core = await make_core(default=DEFAULT, text=EmojiEngine(ranker), pictures=PictureEngine(PictureModel()))
    core.pipeline.retry_delays = (0.1, 0.2)
    surface = FlakyReplies()
    core.pipeline.register(surface)
    frog = Attachment("frog.jpg", "image/jpeg", len(photo), photo)
    event = MessageCreated("gateway", uuid.uuid4().hex, RUN_CHANNEL, uuid.uuid4().hex, "U1", "", attachments=(frog,))
    assert await core.pipeline.submit(event, hold=True)
    assert await wait_until(lambda: core.metrics.count("gateway", "handled") == 1, timeout=60)
    assert surface.failures == 0  # the reply failed once and was tried again
    assert [type(a) for a in surface.done] == [AddReactions, Reply]
    assert len(await core.store.rows("predictions")) == 1
    await core.pipeline.drain(0.5)


async def test_readyz_and_metrics_tell_the_truth_about_the_store(make_core):
    from aiohttp.test_utils import TestClient

    from bot.adapters.ops import add_ops_routes

    proxy = TcpProxy(*PG)
    port = await proxy.start()
    await migrate_async("postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    try:
        core = await make_core(url=f"postgresql+asyncpg://postgres@127.0.0.1:{port}/test", default=DEFAULT)
        app = web.Application()
        add_ops_routes(app, core)
        async with TestClient(TestServer(app)) as client:
            ready = await client.get("/readyz")
            assert ready.status == 200 and (await ready.json())["store"] == "writable"
            await core.handle(message_event := _web_message("happy birthday"))
            assert message_event is not None
            await proxy.cut()
            await asyncio.sleep(1.1)  # past the probe's one-second cache
            down = await client.get("/readyz")
            body = await down.json()
            assert down.status == 503 and body["problems"][0].startswith("store: the database is unavailable")
            assert (await client.get("/healthz")).status == 200  # alive: restarting would not help
            metrics = await (await client.get("/metrics")).text()
            assert 'emojibot_events_total{outcome="handled",platform="web"} 1.0' in metrics
            assert 'emojibot_model_info{engine="text",version="fake-text-1"} 1.0' in metrics
            await proxy.restore()
            await asyncio.sleep(1.1)
            assert (await client.get("/readyz")).status == 200
            await core.text.close()
            assert (await client.get("/healthz")).status == 503
    finally:
        await proxy.close()


async def test_a_burst_of_readyz_or_metrics_requests_asks_the_store_once(make_core, monkeypatch):
    """/readyz and /metrics need no login, and each asked the store on its own: a probe
    write, a count of the inbox. 50 requests at once wait for one (each made its own,
    competing with the inbox's writes for SQLite's lock). The real SQLite store, slowed so
    that they overlap."""
    from aiohttp.test_utils import TestClient

    from bot.adapters.ops import add_ops_routes

    core = await make_core(default=DEFAULT)
    real, probes = core.store.check_writable, []

    async def check_writable():
        probes.append(1)
        await asyncio.sleep(0.2)
        return await real()

    real_count, counts = core.store.pending_events, []

    async def pending_events():
        counts.append(1)
        await asyncio.sleep(0.2)
        return await real_count()

    monkeypatch.setattr(core.store, "check_writable", check_writable)
    monkeypatch.setattr(core.store, "pending_events", pending_events)
    app = web.Application()
    add_ops_routes(app, core)
    async with TestClient(TestServer(app)) as client:
        answers = await asyncio.gather(*(client.get("/readyz") for _ in range(50)))
        assert [a.status for a in answers] == [200] * 50
        assert {(await a.json())["store"] for a in answers} == {"writable"}
        assert len(probes) == 1
        scraped = await asyncio.gather(*(client.get("/metrics") for _ in range(50)))
        assert [s.status for s in scraped] == [200] * 50
        assert all(["emojibot_pending_events 0.0" in await s.text() for s in scraped])
        assert len(counts) == 1


@pytest.mark.parametrize("where", ["sqlite", "postgresql"])
async def test_a_claim_whose_completion_failed_is_neither_counted_pending_nor_kept_forever(
    make_core, where, monkeypatch
):
    """A command or a playground message is claimed without a payload (its caller answers
    at once, nothing to replay). When marking it done fails (the database blinks) the row
    stayed pending for ever: `emojibot_pending_events` only grew, and retention never
    deleted it. Real SQLite and PostgreSQL stores; their complete_event failed once."""
    url = None if where == "sqlite" else "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
    core = await make_core(url=url, default=DEFAULT)
    real, failures = core.store.complete_event, [1]

    async def complete_event(*args, **kw):
        if failures:
            failures.pop()
            raise StoreUnavailable("the database blinked")
        return await real(*args, **kw)

    monkeypatch.setattr(core.store, "complete_event", complete_event)
    before = await core.store.pending_events()
    event = _web_message("pizza party")
    with pytest.raises(StoreUnavailable):
        await core.handle(event)
    rows = [r for r in await core.store.rows("processed_events") if r["event_id"] == event.event_id]
    assert [r["status"] for r in rows] == ["pending"]  # claimed, never marked done
    assert await core.store.pending_events() == before + 1  # its lease still runs: it may yet finish
    from sqlalchemy import update

    from bot.store.models import ProcessedEvent

    async with core.store.session() as s:  # a day and a lease later
        await s.execute(
            update(ProcessedEvent)
            .where(ProcessedEvent.event_id == event.event_id)
            .values(lease_until=0.0, created_at=core.store._ago(2))
        )
        await s.commit()
    assert await core.store.pending_events() == before
    await core.housekeeping()
    assert [r for r in await core.store.rows("processed_events") if r["event_id"] == event.event_id] == []


async def test_the_playground_answers_503_with_the_busy_text_while_the_database_is_cut_off(make_core):
    """The playground's routes caught every failure as a 500 ("see its log", a traceback
    logged) before the app's 503 for an unavailable store could answer: a visitor was told
    the bot broke, not to send it again. PostgreSQL cut off by a proxy."""
    from aiohttp.test_utils import TestClient

    from bot.adapters.web import build_app
    from bot.core.bot import BUSY_TEXT
    from bot.serve import _prepare_playground

    proxy = TcpProxy(*PG)
    port = await proxy.start()
    await migrate_async("postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    try:
        core = await make_core(url=f"postgresql+asyncpg://postgres@127.0.0.1:{port}/test", default=DEFAULT)
        await _prepare_playground(core)
        async with TestClient(TestServer(build_app(core))) as client:
            assert (await client.post("/api/messages", json={"text": "pizza party"})).status == 200
            await proxy.cut()
            down = await client.post("/api/messages", json={"text": "taco tuesday"})
            assert down.status == 503 and BUSY_TEXT in (await down.json())["error"]
            await proxy.restore()
            assert (await client.post("/api/messages", json={"text": "taco tuesday"})).status == 200
    finally:
        await proxy.close()


def _web_message(text):
    from bot.core.events import MessageCreated

    return MessageCreated("web", uuid.uuid4().hex, RUN_CHANNEL, uuid.uuid4().hex, "w", text)


async def test_a_picture_whose_file_host_answers_503_is_tried_again_not_dropped(make_core):
    import io

    from PIL import Image

    from bot.testing.fake_engine import FakePictureEngine

    buf = io.BytesIO()
    Image.new("RGB", (200, 150), (200, 40, 40)).save(buf, "PNG")
    async with SlackStack(make_core, pictures=FakePictureEngine()) as stack:
        stack.fake.files["tomato.png"] = buf.getvalue()
        stack.fake.file_outages["tomato.png"] = 2
        f = {
            "id": "F1",
            "name": "tomato.png",
            "mimetype": "image/png",
            "size": len(buf.getvalue()),
            "url_private": stack.fake.file_url("tomato.png"),
        }
        ev = {**message(1, "picture "), "subtype": "file_share", "files": [f]}
        assert (await stack.sender.deliver(ev))[-1] == 200
        assert await wait_until(lambda: len(stack.fake.calls_of("files.completeUploadExternal")) == 1)
        assert [r["whole"] for r in stack.fake.file_requests] == [False, False, True]
        assert stack.core.metrics.count("slack", "retried") == 2


async def test_socket_mode_leaves_an_envelope_unacked_while_the_store_is_read_only(make_core):
    """Socket Mode: Slack resends an envelope that was not acknowledged; the bot acks only
    what it has stored."""
    fake = FakeSlack()
    api = await fake.start()
    core = await make_core(default=DEFAULT)
    adapter = SlackAdapter(core, fake.token, SECRET, base_url=api)
    await adapter.start()
    task = asyncio.create_task(adapter.run_socket_mode(fake.app_token))
    store = core.store

    def read_only(dbapi_conn, _record):
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA query_only=ON")
        cur.close()

    try:
        await fake.wait_for_socket()
        sa_event.listen(store.engine.sync_engine, "connect", read_only)
        await store.engine.dispose()
        ev = message(7, "socket ")
        first = await fake.socket_event(ev, event_id="EvSOCKRO1")
        await asyncio.sleep(1.0)
        assert first not in {c.args["envelope_id"] for c in fake.calls_of("socket.ack")}
        assert fake.calls_of("reactions.add") == []
        sa_event.remove(store.engine.sync_engine, "connect", read_only)
        await store.engine.dispose()
        again = await fake.socket_event(ev, event_id="EvSOCKRO1", retry=1)  # Slack's resend
        acks = await fake.wait_for("socket.ack", 1)
        assert again in {c.args["envelope_id"] for c in acks}
        assert await wait_until(lambda: len(fake.calls_of("reactions.add")) == REACTIONS)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await core.pipeline.drain(0.5)
        await adapter.close()
        await fake.close()


async def test_ids_longer_than_their_columns_or_holding_a_nul_are_answered_once(make_core):
    """An event id over 128 characters and, on PostgreSQL, a channel id with a NUL: the
    store keeps them as one id each (cut, with a digest), so the event is run, completed
    and never replayed."""
    await migrate_async("postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    async with SlackStack(make_core, "postgresql+asyncpg://postgres@127.0.0.1:5432/test") as stack:
        long_id = "Ev" + "L" * 300 + uuid.uuid4().hex
        ev = message(3, "long id ")
        nul = {**message(4, "nul channel "), "channel": RUN_CHANNEL + "\x00x"}
        assert (await stack.sender.deliver(ev, long_id))[-1] == 200
        assert (await stack.sender.deliver(nul))[-1] == 200
        assert await wait_until(all_answered(stack, [ev, nul]))
        assert (await stack.sender.deliver(ev, long_id))[-1] == 200  # Slack's retry: a duplicate
        await asyncio.sleep(0.5)
        assert_each_answered_once(stack, [ev, nul])
        from bot.store.repository import fit_id

        stored = {r["event_id"]: r["status"] for r in await stack.core.store.rows("processed_events")}
        assert stored[fit_id(long_id, 128)] == "done"  # completed under the same stored id, so never replayed


async def test_an_event_slower_than_its_lease_is_not_started_twice(make_core):
    """A platform that keeps the bot waiting past the lease: the lease is renewed while the
    event runs, and this process's replayer never starts a second copy."""
    from bot.core.events import MessageCreated

    class SlowSurface(RecordingSurface):
        async def act(self, action, event):
            await asyncio.sleep(1.2)  # four leases long
            self.done.append(action)

    core = await make_core(default=DEFAULT)
    core.pipeline.lease = 0.3
    core.pipeline.replay_interval = 0.05
    surface = SlowSurface()
    core.pipeline.register(surface)
    await core.pipeline.start()
    await core.pipeline.submit(MessageCreated("gateway", uuid.uuid4().hex, RUN_CHANNEL, "m1", "U1", "pizza"))
    assert await wait_until(lambda: core.metrics.count("gateway", "handled") == 1, timeout=10)
    await asyncio.sleep(0.5)
    assert len(surface.done) == 1 and core.metrics.count("gateway", "handled") == 1
    await core.pipeline.drain(0.5)


async def test_a_shutdown_lets_an_event_finish_the_actions_it_began_and_hands_back_the_rest(make_core):
    """SIGTERM with no grace while one event is half way through its actions and another
    is still being read: the first finishes and is marked done (the next start must not
    react or reply again), the second is handed back whole; an action that hangs past
    ``finish_timeout`` is cut and handed back too."""
    from bot.core.events import MessageCreated

    class GatedSurface(RecordingSurface):
        def __init__(self):
            super().__init__()
            self.acting, self.reading = asyncio.Event(), asyncio.Event()
            self.release = asyncio.Event()

        async def hydrate(self, event):
            if event.text.startswith("slow read"):
                self.reading.set()
                await asyncio.sleep(60)
            return event

        async def act(self, action, event):
            self.acting.set()
            await self.release.wait()
            self.done.append((event.event_id, action))

    core = await make_core(default=DEFAULT)
    surface = GatedSurface()
    core.pipeline.register(surface)
    acts = MessageCreated("gateway", uuid.uuid4().hex, RUN_CHANNEL, "m1", "U1", "pizza party")
    reads = MessageCreated("gateway", uuid.uuid4().hex, RUN_CHANNEL, "m2", "U1", "slow read of a picture")
    await core.pipeline.submit(acts)
    await core.pipeline.submit(reads)
    await asyncio.wait_for(asyncio.gather(surface.acting.wait(), surface.reading.wait()), 10)
    asyncio.get_running_loop().call_later(0.3, surface.release.set)  # the platform answers, slowly
    assert await core.pipeline.drain(0.0) == 0
    stored = {r["event_id"]: r["status"] for r in await core.store.rows("processed_events")}
    assert stored[acts.event_id] == "done" and stored[reads.event_id] == "pending"
    assert [eid for eid, _ in surface.done] == [acts.event_id]
    assert core.pipeline.handed_back == 1

    core2 = await make_core(default=DEFAULT)
    hung = GatedSurface()  # never released: the platform does not answer at all
    core2.pipeline.register(hung)
    stuck = MessageCreated("gateway", uuid.uuid4().hex, RUN_CHANNEL, "m3", "U1", "coffee")
    await core2.pipeline.submit(stuck)
    await asyncio.wait_for(hung.acting.wait(), 10)
    assert await core2.pipeline.drain(0.0, finish_timeout=0.3) == 0
    stored = {r["event_id"]: r["status"] for r in await core2.store.rows("processed_events")}
    assert stored[stuck.event_id] == "pending" and core2.pipeline.handed_back == 1 and hung.done == []


async def test_only_the_first_picture_of_a_message_is_downloaded(make_core):
    import io

    from PIL import Image

    from bot.testing.fake_engine import FakePictureEngine

    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 200, 10)).save(buf, "PNG")
    async with SlackStack(make_core, pictures=FakePictureEngine()) as stack:
        files = []
        for i in range(3):
            stack.fake.files[f"p{i}.png"] = buf.getvalue()
            files.append(
                {
                    "id": f"F{i}",
                    "name": f"p{i}.png",
                    "mimetype": "image/png",
                    "size": len(buf.getvalue()),
                    "url_private": stack.fake.file_url(f"p{i}.png"),
                }
            )
        ev = {**message(9, "three pictures "), "subtype": "file_share", "files": files}
        assert (await stack.sender.deliver(ev))[-1] == 200
        assert await wait_until(lambda: len(stack.fake.calls_of("files.completeUploadExternal")) == 1)
        assert [r["name"] for r in stack.fake.file_requests] == ["p0.png"]


async def test_a_refused_admin_command_keeps_only_its_action(make_core):
    from bot.core.events import CommandInvoked

    core = await make_core(admins=("UADMIN",))
    await core.handle(CommandInvoked("slack", uuid.uuid4().hex, "C1", "U2", "emojify-admin", "threshold call me 555"))
    await core.handle(CommandInvoked("slack", uuid.uuid4().hex, "C1", "UADMIN", "emojify-admin", "threshold 0.3"))
    rows = await core.store.rows("admin_audit")
    assert [(r["action"], r["detail"], r["allowed"]) for r in rows] == [
        ("threshold", "", False),
        ("threshold", "0.3", True),
    ]
