"""Issue 10 ("safe to deploy"), the playground's rows, re-run the way they were found: real
HTTP on loopback (aiohttp's TestServer), a real SQLite store, the model-free FakeEngine.

Time never comes from the wall clock here: the rate limits run on a frozen clock that a
test moves by hand, so a burst is exactly a burst."""

import asyncio
import io
import logging
import subprocess
import sys

import pytest
from aiohttp import DummyCookieJar, FormData
from aiohttp.test_utils import TestClient, TestServer

from bot.adapters.web import build_app, check_playground
from bot.adapters.web.app import client_key, host_allowed, is_trusted_local, origin_matches
from bot.core.config import BotSettings, SettingsError

SECRET = "correct horse battery staple"
PUBLIC = "bot.example.com"


def settings(**kw) -> BotSettings:
    return BotSettings(_env_file=None, **kw)


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
async def playground(make_core):
    """``start(**settings)`` → a TestClient on 127.0.0.1 over ``build_app``; ``client.core``,
    ``client.clock``; ``client.cookie_jar`` keeps the browser's cookies unless ``jar=False``."""
    clients = []

    async def start(jar=True, **kw):
        core = await make_core()
        clock = Clock()
        client = TestClient(
            TestServer(build_app(core, settings(**kw), clock=clock), host="127.0.0.1"),
            cookie_jar=None if jar else DummyCookieJar(),
        )
        await client.start_server()
        client.core, client.clock = core, clock
        clients.append(client)
        return client

    yield start
    for c in clients:
        await c.close()


async def _rows(client, table):
    return await client.core.store.rows(table)


async def _say(client, text="pizza night", **kw):
    return await client.post("/api/messages", json={"text": text}, **kw)


# -- who is local: pure functions of (peer address, Host header) ----------------------------------
@pytest.mark.parametrize(
    "remote,host,proxied,local",
    [
        ("127.0.0.1", "127.0.0.1:8080", False, True),
        ("127.0.0.1", "localhost:8080", False, True),
        ("::1", "[::1]:8080", False, True),
        ("::ffff:127.0.0.1", "LOCALHOST", False, True),
        ("127.0.0.1", "evil.example.com:8080", False, False),  # DNS rebinding: loopback peer, foreign name
        ("127.0.0.1", "127.0.0.1.evil.example.com", False, False),
        ("127.0.0.1", "127.0.0.1:8080", True, False),  # a reverse proxy on the same machine
        ("203.0.113.5", "127.0.0.1:8080", False, False),
        ("10.0.0.7", "10.0.0.7:8080", False, False),
        (None, "localhost", False, False),
        ("127.0.0.1", "", False, False),
    ],
)
def test_trusted_local_needs_a_loopback_peer_and_a_loopback_host(remote, host, proxied, local):
    assert is_trusted_local(remote, host, proxied) is local


def test_rate_limit_keys_group_an_ipv6_host_by_its_64():
    assert client_key("2001:db8:1:2::1") == client_key("2001:db8:1:2:ffff::9") == "ip:2001:db8:1:2::/64"
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key("203.0.113.5") == client_key("::ffff:203.0.113.5") == "ip:203.0.113.5"
    assert client_key("203.0.113.5") != client_key("203.0.113.6")


def test_host_and_origin_checks():
    public = frozenset({PUBLIC, "other.example.com:8443"})
    assert host_allowed("127.0.0.1:8080", frozenset()) and host_allowed("[::1]:8080", frozenset())
    assert host_allowed("Bot.Example.com", public) and host_allowed("bot.example.com:443", public)
    assert host_allowed("other.example.com:8443", public) and not host_allowed("other.example.com", public)
    assert not host_allowed("evil.example.com", public) and not host_allowed(None, public)
    assert origin_matches("http://127.0.0.1:8080", "127.0.0.1:8080")
    assert origin_matches("https://bot.example.com", "bot.example.com")
    assert origin_matches("https://bot.example.com:443", "bot.example.com")
    assert not origin_matches("http://evil.example.com", "127.0.0.1:8080")
    assert not origin_matches("null", "127.0.0.1:8080")
    assert not origin_matches("http://127.0.0.1:9999", "127.0.0.1:8080")


# -- when the playground is mounted at all --------------------------------------------------------
def test_check_playground_decides_and_refuses_an_open_address_without_a_secret():
    assert check_playground(settings()) is True  # the README's "no tokens" default
    assert check_playground(settings(slack_bot_token="xoxb-1", slack_signing_secret="s")) is False
    assert check_playground(settings(discord_token="d")) is False
    assert check_playground(settings(playground="off")) is False
    assert check_playground(settings(playground="on", slack_bot_token="xoxb-1")) is True  # loopback: fine
    assert check_playground(settings(host="0.0.0.0", playground_secret=SECRET)) is True
    assert check_playground(settings(host="0.0.0.0", slack_bot_token="xoxb-1")) is False  # off: no secret needed
    refused = [{"host": "0.0.0.0"}, {"host": "::"}, {"host": "192.0.2.10", "playground": "on"}]
    refused.append({"public_hosts": PUBLIC})
    for kw in refused:
        with pytest.raises(SettingsError) as err:
            check_playground(settings(**kw))
        assert "EMOJIBOT_PLAYGROUND_SECRET" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ValueError, match="EMOJIBOT_PLAYGROUND_SECRET|playground_secret"):
        settings(playground_secret="short")


def test_serve_on_an_open_address_without_a_secret_refuses_to_start(tmp_path):
    """As an operator deployed it: `EMOJIBOT_HOST=0.0.0.0 emojibot serve` with no secret."""
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "EMOJIBOT_HOST": "0.0.0.0",
        "EMOJIBOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'x.sqlite'}",
    }
    r = subprocess.run(
        [sys.executable, "-m", "bot.cli", "serve"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 2 and "EMOJIBOT_PLAYGROUND_SECRET" in r.stderr
    assert not (tmp_path / "x.sqlite").exists()  # refused before touching anything


# -- admin ------------------------------------------------------------------------------------------
async def test_admin_from_loopback_is_allowed(playground):
    client = await playground()
    res = await client.post("/api/commands", json={"command": "emojify-admin", "text": "status"})
    assert res.status == 200 and "Auto-react is" in (await res.json())["replies"][0]["text"]
    assert [r["allowed"] for r in await _rows(client, "admin_audit")] == [True]


async def test_the_playground_admin_is_obeyed_with_discords_manage_server_rule_off(playground):
    """The playground vouched for its admin by saying they could manage the server, which the
    policy honours only while EMOJIBOT_DISCORD_MANAGE_SERVER_IS_ADMIN is on: an operator who
    turned that off for Discord found every playground admin command refused."""
    from bot.core.bot import AdminPolicy

    client = await playground()
    client.core.admins = AdminPolicy(manage_server_is_admin=False)  # as `serve` builds it then
    res = await client.post("/api/commands", json={"command": "emojify-admin", "text": "off"})
    assert res.status == 200 and "Auto-react is off" in (await res.json())["replies"][0]["text"]
    assert [r["allowed"] for r in await _rows(client, "admin_audit")] == [True]


async def test_admin_is_refused_to_a_caller_that_is_not_local_and_has_no_secret(playground):
    # No secret, but the page is reached under a public name (a browser through a proxy / rebound DNS):
    # the playground answers, the admin command does not obey.
    client = await playground(public_hosts=PUBLIC)
    cmd = {"command": "emojify-admin", "text": "off"}
    res = await client.post("/api/commands", json=cmd, headers={"Host": PUBLIC})
    assert res.status == 200 and "Only admins" in (await res.json())["replies"][0]["text"]
    proxied = await client.post("/api/commands", json=cmd, headers={"X-Forwarded-For": "198.51.100.9"})
    assert "Only admins" in (await proxied.json())["replies"][0]["text"]
    assert [r["allowed"] for r in await _rows(client, "admin_audit")] == [False, False]
    ok = await client.post("/api/commands", json={"command": "emojify", "text": "pizza"}, headers={"Host": PUBLIC})
    assert ok.status == 200 and len((await ok.json())["replies"][0]["emojis"]) == 5


async def test_with_a_secret_strangers_get_401_and_the_secret_opens_admin(playground):
    client = await playground(public_hosts=PUBLIC, playground_secret=SECRET, jar=True)
    h = {"Host": PUBLIC}
    cmd = {"command": "emojify-admin", "text": "status"}
    for path, body in (("/api/commands", cmd), ("/api/messages", {"text": "hi"}), ("/api/reactions", {})):
        res = await client.post(path, json=body, headers=h)
        assert res.status == 401 and "password" in (await res.json())["error"]
    assert (await (await client.get("/api/session", headers=h)).json())["login_required"] is True
    assert await _rows(client, "admin_audit") == [] and await _rows(client, "predictions") == []
    wrong = await client.post("/api/commands", json=cmd, headers={**h, "Authorization": "Bearer nope-nope-nope"})
    assert wrong.status == 401
    bearer = await client.post("/api/commands", json=cmd, headers={**h, "Authorization": f"Bearer {SECRET}"})
    assert bearer.status == 200 and "Auto-react is" in (await bearer.json())["replies"][0]["text"]
    # The page's login: a wrong password, then the right one sets an HttpOnly SameSite=Strict session cookie.
    assert (await client.post("/api/login", json={"secret": "wrong password!"}, headers=h)).status == 401
    login = await client.post("/api/login", json={"secret": SECRET}, headers=h)
    cookie = login.cookies["emojibot_session"]
    assert login.status == 200 and cookie["httponly"] and cookie["samesite"] == "Strict"
    res = await client.post("/api/commands", json=cmd, headers=h)
    assert res.status == 200 and "Auto-react is" in (await res.json())["replies"][0]["text"]
    assert [r["allowed"] for r in await _rows(client, "admin_audit")] == [True, True]
    # A forged session cookie is nobody's.
    client.session.cookie_jar.clear()
    client.session.cookie_jar.update_cookies({"emojibot_session": "s1000." + "0" * 32})
    assert (await client.post("/api/commands", json=cmd, headers=h)).status == 401


async def test_password_guessing_is_rate_limited(playground):
    client = await playground(playground_secret=SECRET)
    codes = [(await client.post("/api/login", json={"secret": f"guess number {i}"})).status for i in range(8)]
    assert codes == [401] * 5 + [429] * 3
    res = await client.post("/api/login", json={"secret": SECRET})
    assert res.status == 429 and int(res.headers["Retry-After"]) >= 1  # no oracle while locked out
    client.clock.now += 10
    assert (await client.post("/api/login", json={"secret": SECRET})).status == 200


# -- Host and Origin --------------------------------------------------------------------------------
async def test_foreign_host_header_is_refused(playground):
    client = await playground()
    for res in (
        await client.get("/", headers={"Host": "evil.example.com"}),
        await _say(client, headers={"Host": "evil.example.com:8080"}),
    ):
        body = await res.json()
        assert res.status == 403 and "EMOJIBOT_PUBLIC_HOSTS" in body["error"] and "\n" not in body["error"]
    assert await _rows(client, "predictions") == []
    assert (await client.get("/healthz", headers={"Host": "10.1.2.3:8080"})).status == 200  # probes still work


async def test_cross_site_writes_are_refused(playground):
    client = await playground()
    host = f"127.0.0.1:{client.port}"
    cmd = {"command": "emojify-admin", "text": "off"}
    for headers in (
        {"Origin": "http://evil.example.com"},
        {"Origin": "null"},
        {"Origin": f"http://127.0.0.1:{client.port + 1}"},
        {"Sec-Fetch-Site": "cross-site"},
    ):
        res = await client.post("/api/commands", json=cmd, headers=headers)
        assert res.status == 403 and "cross-site" in (await res.json())["error"], headers
    assert await _rows(client, "admin_audit") == []
    same = await client.post("/api/commands", json={**cmd, "text": "status"}, headers={"Origin": f"http://{host}"})
    assert same.status == 200
    form = await client.post(  # what a plain HTML form can send without a preflight
        "/api/commands",
        data="command=emojify-admin&text=off",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert form.status == 415 and [r["allowed"] for r in await _rows(client, "admin_audit")] == [True]


# -- rate limits --------------------------------------------------------------------------------------
async def test_a_burst_of_messages_gets_429_and_the_store_stays_bounded(playground):
    client = await playground()  # defaults: 1 message/s, burst 10
    codes = []
    for i in range(15):
        res = await _say(client, f"pizza night {i}")
        codes.append(res.status)
    assert codes == [200] * 10 + [429] * 5
    assert res.headers["Retry-After"] == "1" and "too many messages" in (await res.json())["error"]
    assert len(await _rows(client, "predictions")) == 10
    cmd = await client.post("/api/commands", json={"command": "emojify", "text": "x"})
    assert cmd.status == 429  # commands share the bucket
    client.clock.now += 2.0
    assert [(await _say(client)).status for _ in range(3)] == [200, 200, 429]


async def test_reactions_are_rate_limited(playground):
    client = await playground()
    mid = (await (await _say(client, "merry christmas")).json())["message_id"]
    codes = [
        (await client.post("/api/reactions", json={"message_id": mid, "emoji": "🎄", "added": i % 2 == 0})).status
        for i in range(30)
    ]
    assert codes == [200] * 20 + [429] * 10
    assert len(await _rows(client, "reaction_events")) == 20


async def test_dropping_the_cookie_does_not_make_new_people(playground):
    """804 reactions, each without the cookie, were 804 endorsers; now new ids are limited per address."""
    client = await playground(jar=False)  # defaults: 5 new ids at once, then 1 a minute
    mid = (await (await _say(client, "merry christmas")).json())["message_id"]  # new id 1

    async def react():
        return (await client.post("/api/reactions", json={"message_id": mid, "emoji": "🎄"})).status

    codes = [await react() for _ in range(40)]
    assert codes == [200] * 4 + [429] * 36
    res = await client.post("/api/reactions", json={"message_id": mid, "emoji": "🎄"})
    assert "new visitors" in (await res.json())["error"] and int(res.headers["Retry-After"]) > 1
    assert len({r["user_hash"] for r in await _rows(client, "reaction_events")}) == 4
    client.clock.now += 60
    assert [await react(), await react()] == [200, 429]
    assert len({r["user_hash"] for r in await _rows(client, "reaction_events")}) == 5


async def test_a_forged_user_cookie_is_not_accepted(playground):
    client = await playground()
    mid = (await (await _say(client, "merry christmas")).json())["message_id"]
    forged = "web-0123456789abcdef"
    for value in (forged, forged + "." + "0" * 32, "web-mine"):
        client.session.cookie_jar.clear()
        client.session.cookie_jar.update_cookies({"emojibot_user": value})
        res = await client.post("/api/reactions", json={"message_id": mid, "emoji": "🎄"})
        assert res.status == 200 and res.cookies["emojibot_user"].value != value  # a new, signed id instead
    hashes = {r["user_hash"] for r in await _rows(client, "reaction_events")}
    assert len(hashes) == 3 and await client.core.store.user_hash("web", forged) not in hashes
    # The signed id the bot handed out is kept: no new id while the cookie is there.
    client.session.cookie_jar.clear()
    first = await _say(client)
    again = await _say(client)
    assert "emojibot_user" in first.cookies and "emojibot_user" not in again.cookies


# -- body limits ----------------------------------------------------------------------------------------
async def test_bodies_over_the_limits_get_413(playground):
    client = await playground(max_picture_mb=0.01)  # a 10 KB picture cap
    big = {"text": "x" * (1024 * 1024)}  # the 1 MB anonymous message
    res = await client.post("/api/messages", json=big)
    assert res.status == 413 and "limit" in (await res.json())["error"]

    async def chunks():  # no Content-Length: the cut happens while reading
        for _ in range(40):
            yield b" " * 4096
        yield b'{"text": "hi"}'

    res = await client.post("/api/messages", data=chunks(), headers={"Content-Type": "application/json"})
    assert res.status == 413
    form = FormData()
    form.add_field("text", "")
    form.add_field("picture", b"\x89PNG" + b"0" * 20_000, filename="big.png", content_type="image/png")
    res = await client.post("/api/messages", data=form)
    assert res.status == 413 and "limit" in (await res.json())["error"]
    assert await _rows(client, "predictions") == [] and await _rows(client, "processed_events") == []


# -- malformed bodies: 4xx with one line, never a 500 or a traceback ----------------------------------------
MALFORMED = [
    ("/api/commands", b'["emojify-admin", "status"]', "application/json", 400, "JSON object"),
    ("/api/commands", b"[" * 100_000, "application/json", 413, "limit"),
    ("/api/commands", b"[" * 30_000 + b"]" * 30_000, "application/json", 400, "nested"),
    ("/api/messages", b'{"text": "caf\xff"}', "application/json", 400, "UTF-8"),
    ("/api/messages", b"--x\r\n", "multipart/form-data", 400, "multipart"),
    ("/api/messages", b"hello", "text/plain", 415, "Content-Type"),
    ("/api/messages", b'{"text": {"a": 1}}', "application/json", 400, "string"),
    ("/api/commands", b'{"command": 5}', "application/json", 400, "string"),
    ("/api/reactions", b'{"message_id": "x", "emoji": "a"}', "application/json", 400, "message_id"),
    ("/api/reactions", b'{"message_id": "' + b"a" * 32 + b'", "emoji": {}}', "application/json", 400, "JSON like"),
    ("/api/login", b"[]", "application/json", 400, "JSON object"),
]


@pytest.mark.parametrize("path,body,ctype,status,fragment", MALFORMED, ids=[f"{m[0]}-{m[3]}-{m[4]}" for m in MALFORMED])
async def test_malformed_bodies_get_a_4xx_with_one_line(playground, caplog, path, body, ctype, status, fragment):
    client = await playground(playground_secret=SECRET) if path == "/api/login" else await playground()
    with caplog.at_level(logging.INFO):
        res = await client.post(path, data=body, headers={"Content-Type": ctype})
    error = (await res.json())["error"]
    assert res.status == status and fragment in error and "\n" not in error, error
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def test_multipart_with_bad_utf8_text_or_unknown_fields_is_400(playground):
    client = await playground()
    form = FormData(default_to_multipart=True)
    form.add_field("text", io.BytesIO(b"caf\xff"), content_type="text/plain")
    res = await client.post("/api/messages", data=form)
    assert res.status == 400 and "UTF-8" in (await res.json())["error"]
    form = FormData(default_to_multipart=True)
    form.add_field("text", "hi")
    form.add_field("extra", "x" * 1000)
    res = await client.post("/api/messages", data=form)
    assert res.status == 400 and "fields" in (await res.json())["error"]
    assert await _rows(client, "predictions") == []


async def test_the_page_still_works_for_its_own_user(playground):
    """The README's flow on loopback: page, message, click, /emojify, with the cookie kept."""
    client = await playground()
    page = await client.get("/")
    assert page.status == 200 and "emojibot" in await page.text() and page.headers["X-Frame-Options"] == "DENY"
    body = await (await _say(client, "merry christmas")).json()
    click = await client.post("/api/reactions", json={"message_id": body["message_id"], "emoji": "🎄"})
    assert click.status == 200
    session = await (await client.get("/api/session")).json()
    assert session == {"login_required": False, "signed_in": False, "local": True, "admin": True}
    rows = await _rows(client, "reaction_events")
    assert body["reactions"] and len(rows) == 1 and rows[0]["emoji"] == "🎄"


async def _raw(client, request: bytes) -> bytes:
    """Send bytes as they are (aiohttp's client would not send a header that is not UTF-8)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    writer.write(request)
    await writer.drain()
    answer = await reader.read(65536)
    writer.close()
    return answer


@pytest.mark.parametrize(
    "header",
    [b"Authorization: Bearer \xff\xfe", b"Cookie: emojibot_session=s1\xff.x", b"Cookie: emojibot_user=\xff"],
)
async def test_credentials_that_are_not_utf8_are_refused_without_a_traceback(playground, caplog, header):
    client = await playground(public_hosts=PUBLIC, playground_secret=SECRET)
    body = b'{"command": "emojify-admin", "text": "status"}'
    request = (
        b"POST /api/commands HTTP/1.1\r\nHost: " + PUBLIC.encode() + b"\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n" + header + b"\r\nConnection: close\r\n\r\n" + body
    )
    answer = await _raw(client, request)
    assert answer.startswith(b"HTTP/1.1 401") or answer.startswith(b"HTTP/1.1 429"), answer[:200]
    assert not [r for r in caplog.records if r.exc_info or r.levelname == "ERROR"]
    assert await _rows(client, "admin_audit") == []
