"""`emojibot serve` as an operator runs it: a real process, real signals, exit statuses."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from bot.store.repository import migrate


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(tmp_path, url, port):
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMOJIBOT_")}
    env.update(EMOJIBOT_DATABASE_URL=url, EMOJIBOT_PORT=str(port), EMOJIBOT_HOST="127.0.0.1", TF_CPP_MIN_LOG_LEVEL="3")
    return env


def _slack_env(tmp_path, url, port, fake, api):
    """`serve`'s environment with Slack over HTTP, the fake Slack as its Web API."""
    env = _env(tmp_path, url, port)
    env.update(
        EMOJIBOT_SLACK_BOT_TOKEN=fake.token,
        EMOJIBOT_SLACK_SIGNING_SECRET="serve-test-signing-secret",
        EMOJIBOT_SLACK_API_URL=api,
    )
    return env


def test_sigterm_drains_and_exits_0(tmp_path):
    port = _free_port()
    url = f"sqlite+aiosqlite:///{tmp_path / 'serve.sqlite'}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve"],
        env=_env(tmp_path, url, port),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        ready = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                    ready = r.status
                    break
            except OSError:
                time.sleep(0.5)
        assert ready == 200, proc.stdout.read() if proc.poll() is not None else "not ready in 120 s"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            assert b"emojibot_model_info" in r.read()
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert "drained: 0 events dropped" in out
    assert (tmp_path / "serve.sqlite.salt").stat().st_mode & 0o777 == 0o600  # the salt, beside the file


def test_a_read_only_database_stops_serve_with_one_line_naming_the_setting(tmp_path):
    db = tmp_path / "ro.sqlite"
    migrate(f"sqlite+aiosqlite:///{db}")
    url = f"sqlite+aiosqlite:///file:{db}?mode=ro&uri=true"  # SQLite's own read-only mode (root ignores chmod)
    proc = subprocess.run(
        [sys.executable, "-m", "bot.cli", "serve"],
        env=_env(tmp_path, url, _free_port()),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
    )
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 2, proc.stderr
    assert last.startswith("emojibot: error: EMOJIBOT_DATABASE_URL:") and "not writable" in last
    assert "Traceback" not in proc.stderr


async def test_slack_events_in_flight_at_sigterm_are_answered_after_the_restart(tmp_path):
    """The real process with Slack over HTTP (the fake Slack as its Web API): SIGTERM while
    events are arriving exits 0, and the next start answers every event Slack was sent,
    each exactly once, whether Slack resent it or the inbox replayed it."""
    import asyncio
    import uuid

    from bot.testing.fake_slack import FakeSlack, SlackSender

    fake = FakeSlack()
    api = await fake.start()
    port = _free_port()
    url = f"sqlite+aiosqlite:///{tmp_path / 'slack.sqlite'}"
    env = _slack_env(tmp_path, url, port, fake, api)
    env.update(
        EMOJIBOT_AUTO_REACT="true",
        EMOJIBOT_THRESHOLD="-1",
        EMOJIBOT_REACTION_COUNT="2",
        EMOJIBOT_SHUTDOWN_GRACE_S="0",
    )

    async def start():
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot.cli", "serve", env=env, cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        for _ in range(240):
            if proc.returncode is not None:
                break
            try:
                r = await asyncio.to_thread(urllib.request.urlopen, f"http://127.0.0.1:{port}/readyz", None, 2)
                if r.status == 200:
                    return proc
            except OSError:
                await asyncio.sleep(0.5)
        raise AssertionError((await proc.stdout.read()).decode()[-3000:])

    first = await start()
    try:
        async with SlackSender(f"http://127.0.0.1:{port}/slack/events", "serve-test-signing-secret") as sender:
            events = [
                (
                    {"type": "message", "channel": "C1", "user": "U1", "text": f"pizza party {i}", "ts": f"17.{i:06d}"},
                    f"EvSERVE{i}{uuid.uuid4().hex[:6]}",
                )
                for i in range(30)
            ]
            delays = (1.0, 2.0, 4.0, 8.0, 16.0, 16.0)
            deliveries = [asyncio.create_task(sender.deliver(ev, eid, retry_delays=delays)) for ev, eid in events]
            await asyncio.sleep(0.05)
            first.send_signal(signal.SIGTERM)  # while the events arrive
            out = (await first.stdout.read()).decode()
            assert await first.wait() == 0, out[-3000:]
            assert "drained: 0 events dropped" in out
            second = await start()
            statuses = await asyncio.gather(*deliveries)
            assert all(s[-1] == 200 for s in statuses), statuses
            for _ in range(200):
                got = {}
                for c in fake.calls_of("reactions.add"):
                    got.setdefault(c.args["timestamp"], []).append(c.args["name"])
                if all(len(got.get(ev["ts"], [])) >= 2 for ev, _ in events):
                    break
                await asyncio.sleep(0.1)
            assert all(len(got.get(ev["ts"], [])) == 2 for ev, _ in events), got
            assert fake.calls_of("already_reacted") == []
            second.send_signal(signal.SIGTERM)
            assert await second.wait() == 0
    finally:
        for p in (first, locals().get("second")):
            if p is not None and p.returncode is None:
                p.kill()
        await fake.close()


async def test_the_bots_own_reaction_handed_back_by_the_last_run_is_not_replayed_as_feedback(tmp_path):
    """A Slack reaction carries no bot flag: the core knows the bot's own by its user id,
    which the Slack adapter learns from auth.test. `serve` started the replayer before
    that, so the bot's own reaction, handed back by the last run's drain, was replayed as a
    person's endorsement of its suggestion and logged for the retrain. The real process,
    the real SQLite file, the fake Slack's auth.test taking 2 s."""
    import asyncio
    import sqlite3
    import uuid

    from bot.core.events import ReactionChanged, event_to_json
    from bot.store.repository import ChannelConfig, Store, migrate_async
    from bot.testing.fake_slack import FakeSlack

    fake = FakeSlack()
    fake.auth_delay = 2.0
    api = await fake.start()
    port = _free_port()
    db = tmp_path / "replay.sqlite"
    url = f"sqlite+aiosqlite:///{db}"
    await migrate_async(url)
    store = Store(url, ChannelConfig(True, 0.2, 3), salt_file=tmp_path / "salt")
    try:  # what the last run left: a message it answered, and its own reaction handed back
        await store.log_prediction("slack", "C1", "17.000001", "text", "pizza party", "v1", ["🍕"], [0.5])
        mine = ReactionChanged(
            "slack", f"reaction-{uuid.uuid4().hex}", "C1", "17.000001", fake.bot_user_id, "pizza", True
        )
        assert await store.accept_event("slack", mine.event_id, event_to_json(mine), 0.0)
    finally:
        await store.close()
    env = _slack_env(tmp_path, url, port, fake, api)
    env.update(EMOJIBOT_USER_HASH_SALT="serve-test-salt")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "serve", env=env, cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        for _ in range(240):  # until the replay has taken the event
            with sqlite3.connect(db) as c:
                status = c.execute(
                    "SELECT status FROM processed_events WHERE event_id = ?", (mine.event_id,)
                ).fetchone()
            if status and status[0] != "pending" or proc.returncode is not None:
                break
            await asyncio.sleep(0.25)
        assert status and status[0] == "done", (
            status,
            (await proc.stdout.read(2000)).decode() if proc.returncode is not None else "",
        )
        with sqlite3.connect(db) as c:
            assert c.execute("SELECT COUNT(*) FROM reaction_events").fetchone()[0] == 0
        proc.send_signal(signal.SIGTERM)
        assert await proc.wait() == 0
    finally:
        if proc.returncode is None:
            proc.kill()
        await fake.close()
