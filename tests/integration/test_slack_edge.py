"""Issue 10 ("safe to deploy"), the Slack edge: ``POST /slack/events`` mounted as ``serve``
mounts it (on the app whose limit is the 10 MB picture cap), attacked over loopback the way
it was found. Every malformed request is a 4xx with a one-line reason, nothing is logged
with its body, and nothing over 1 MB is read or stored."""

import hashlib
import hmac
import json
import logging
import time

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from bot.adapters.slack import SlackAdapter
from bot.adapters.web import build_app
from bot.core.config import BotSettings
from bot.testing.fake_slack import FakeSlack, SlackSender, event_callback

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
MB = 1024 * 1024


def sign(body: bytes, ts: str | None = None) -> dict[str, str]:
    ts = ts or str(int(time.time()))
    sig = hmac.new(SECRET.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={sig}"}


@pytest.fixture()
async def edge(make_core, caplog):
    # As `serve` does: INFO logging is configured before the adapter (bolt copies the root level).
    caplog.set_level(logging.INFO)
    fake = FakeSlack()
    api = await fake.start()
    core = await make_core()
    adapter = SlackAdapter(core, fake.token, SECRET, base_url=api)
    await adapter.start()
    app = build_app(core, BotSettings(_env_file=None), playground=False)
    adapter.add_routes(app)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    url = str(server.make_url("/slack/events"))
    async with ClientSession() as http:

        async def post(body: bytes, headers: dict[str, str], ctype: str = "application/json"):
            async with http.post(url, data=body, headers={"Content-Type": ctype, **headers}) as r:
                return r.status, await r.text()

        caplog.clear()
        yield post, fake, core, url
    await server.close()
    await core.pipeline.drain(0.5)
    await adapter.close()
    await fake.close()


def _logged(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records]


def _no_traceback(caplog) -> bool:
    return not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def test_unsigned_9mb_requests_are_refused_unread_and_do_not_flood_the_log(edge, caplog):
    post, fake, core, _ = edge
    body = b'{"type": "event_callback", "event": {"text": "' + b"A" * int(9.4 * MB) + b'"}}'
    for _ in range(5):
        status, text = await post(body, {})
        assert status == 413 and "limit" in json.loads(text)["error"]
    logged = _logged(caplog)
    assert sum(len(m) for m in logged) < 5 * 1024 and not any("AAAAAAAA" in m for m in logged)
    assert _no_traceback(caplog) and await core.store.rows("processed_events") == []


async def test_an_unsigned_body_under_the_cap_is_401_and_logged_without_it(edge, caplog):
    post, *_ = edge
    body = b'{"type": "event_callback", "event": {"text": "' + b"B" * (900 * 1024) + b'"}}'
    forged = {"X-Slack-Request-Timestamp": str(int(time.time())), "X-Slack-Signature": "v0=" + "0" * 64}
    assert (await post(body, forged))[0] == 401
    assert (await post(body, {}))[0] == 401
    logged = _logged(caplog)
    assert sum(len(m) for m in logged) < 2 * 1024 and not any("BBBBBBBB" in m for m in logged)
    assert any("invalid or missing X-Slack-Signature" in m for m in logged)  # visible, in one line


async def test_a_signed_event_over_1mb_is_413_and_not_stored(edge):
    post, fake, core, _ = edge
    ev = {"type": "message", "channel": "C1", "user": "U1", "text": "pizza " * (300 * 1024), "ts": "1.000001"}
    body = json.dumps(event_callback(ev)).encode()
    assert len(body) > MB
    status, text = await post(body, sign(body))
    assert status == 413 and "1 MB" in json.loads(text)["error"]
    assert await core.store.rows("processed_events") == [] and fake.calls_of("reactions.add") == []


async def test_a_chunked_body_is_cut_at_1mb_too(edge):
    post, *_ = edge

    async def chunks():
        for _ in range(20):
            yield b" " * (64 * 1024)
        yield b"{}"

    status, text = await post(chunks(), sign(b"{}"))
    assert status == 413 and "limit" in json.loads(text)["error"]


NESTED = b'{"a": ' * 50_000 + b"1" + b"}" * 50_000
MALFORMED = {
    "non-numeric timestamp": (b'{"type": "url_verification", "challenge": "c"}', "ts", "application/json", "number"),
    "signed JSON array": (b'[{"type": "event_callback"}]', None, "application/json", "JSON object"),
    "signed JSON string": (b'"event_callback"', None, "application/json", "JSON object"),
    "invalid UTF-8": (b'{"type": "event_callback", "x": "\xff\xfe"}', None, "application/json", "UTF-8"),
    "truncated JSON": (b'{"type": "event_callback", ', None, "application/json", "not valid JSON"),
    "JSON nested 50k deep": (NESTED, None, "application/json", "nested"),
    "form payload nested": (b"payload=" + b"%5B" * 50_000, None, "application/x-www-form-urlencoded", "nested"),
    "form payload array": (b"payload=%5B1%2C2%5D", None, "application/x-www-form-urlencoded", "JSON object"),
    "form payload not JSON": (b"payload=%7Bnope", None, "application/x-www-form-urlencoded", "not valid JSON"),
    "team is a number": (b'{"type": "event_callback", "team": 5}', None, "application/json", "not a Slack request"),
    "authorizations a string": (b'{"authorizations": "x"}', None, "application/json", "not a Slack request"),
    # unsigned: refused on its signature before the body is parsed at all
    "unsigned team is a number": (b'{"team": 5}', "unsigned", "application/json", "X-Slack-Signature"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
async def test_malformed_requests_get_a_4xx_with_one_line_and_no_traceback(edge, caplog, case):
    post, fake, core, _ = edge
    body, ts, ctype, fragment = MALFORMED[case]
    headers = {} if ts == "unsigned" else sign(body)
    if ts == "ts":
        headers["X-Slack-Request-Timestamp"] = "12abc"
    status, text = await post(body, headers, ctype)
    error = json.loads(text)["error"]
    assert 400 <= status < 500 and fragment in error and "\n" not in error, (status, error)
    assert _no_traceback(caplog) and await core.store.rows("processed_events") == []
    assert sum(len(m) for m in _logged(caplog)) < 1024


async def test_well_formed_requests_still_go_through(edge):
    post, fake, core, url = edge
    body = b'{"type": "url_verification", "challenge": "abc123", "token": "t"}'
    status, text = await post(body, sign(body))
    assert status == 200 and "abc123" in text
    async with SlackSender(url, SECRET) as sender:
        status, _ = await sender.event(
            {"type": "message", "channel": "C1", "user": "U1", "text": "pizza night", "ts": f"{time.time():.6f}"}
        )
        assert status == 200
        await fake.wait_for("reactions.add", 1, timeout=10)
        status, _ = await sender.command("/emojify", "pizza night")
        assert status == 200


SIGNED_WRONG_SHAPES = {
    "message ts is a number": {"type": "message", "channel": "C1", "user": "U1", "text": "hi", "ts": 1.5},
    "message with no channel": {"type": "message", "user": "U1", "text": "hi", "ts": "1.000100"},
    "files is a string": {"type": "message", "channel": "C1", "text": "hi", "ts": "1.000200", "files": "F1"},
    "file size not a number": {
        "type": "message",
        "channel": "C1",
        "ts": "1.000300",
        "files": [{"mimetype": "image/png", "size": "big", "url_private": "https://files.slack.com/x"}],
    },
    "reaction item is a string": {"type": "reaction_added", "user": "U1", "reaction": "tada", "item": "C1"},
    "reaction with no channel": {
        "type": "reaction_added",
        "user": "U1",
        "reaction": "tada",
        "item": {"type": "message"},
    },
}


@pytest.mark.parametrize("case", list(SIGNED_WRONG_SHAPES))
async def test_a_signed_event_of_the_wrong_shape_gets_a_400_and_nothing_is_stored(edge, caplog, case):
    from bot.testing.fake_slack import event_callback

    post, fake, core, _ = edge
    body = json.dumps(event_callback(SIGNED_WRONG_SHAPES[case])).encode()
    status, text = await post(body, sign(body), "application/json")
    assert status == 400 and "malformed" in text and "\n" not in text, (status, text)
    assert _no_traceback(caplog) and await core.store.rows("processed_events") == []


async def test_a_signed_command_without_its_channel_gets_a_400(edge, caplog):
    from urllib.parse import urlencode

    from bot.testing.fake_slack import command_fields

    post, fake, core, _ = edge
    fields = command_fields("/emojify", "pizza")
    del fields["channel_id"]
    body = urlencode(fields).encode()
    status, text = await post(body, sign(body), "application/x-www-form-urlencoded")
    assert status == 400 and "channel_id" in text
    assert _no_traceback(caplog) and fake.calls_of("chat.postEphemeral") == []


@pytest.mark.parametrize("event", ["hello", [1], 5])
async def test_a_signed_body_whose_event_is_not_an_object_gets_a_400(edge, caplog, event):
    post, fake, core, _ = edge
    body = json.dumps({"type": "event_callback", "event_id": "EvX", "event": event}).encode()
    status, text = await post(body, sign(body))
    assert status == 400 and "event must be a JSON object" in text
    assert _no_traceback(caplog) and await core.store.rows("processed_events") == []


async def test_stalled_unsigned_requests_do_not_hold_up_slacks_events(edge):
    """20 connections that declare a small body and never send it (no signature can be
    checked before the body): 16 of them held every body slot for 10 s, past the 3 s Slack
    waits for its answer, so Slack's own events timed out. Bodies now wait only for bytes
    (a budget by declared length), and a stalled one is cut at 3 s."""
    import asyncio
    from urllib.parse import urlsplit

    post, fake, core, url = edge
    u = urlsplit(url)
    stalled = []
    for _ in range(20):
        reader, writer = await asyncio.open_connection(u.hostname, u.port)
        writer.write(
            b"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"X-Slack-Request-Timestamp: " + str(int(time.time())).encode() + b"\r\n"
            b"X-Slack-Signature: v0=00\r\nContent-Length: 1000\r\n\r\n"
        )
        await writer.drain()
        stalled.append((reader, writer))
    await asyncio.sleep(0.3)  # they are all waiting for their bodies now
    body = json.dumps(
        {"type": "event_callback", "event_id": "EvSTALL1", "team_id": "T1", "api_app_id": "A1",
         "event": {"type": "message", "channel": "C1", "user": "U1", "text": "pizza", "ts": "1700000000.000100"}}
    ).encode()  # fmt: skip
    t0 = time.monotonic()
    status, _ = await asyncio.wait_for(post(body, sign(body)), 10)
    assert status == 200 and time.monotonic() - t0 < 2.0
    answer = await asyncio.wait_for(stalled[0][0].read(65536), 10)  # cut after the read deadline
    assert answer.startswith(b"HTTP/1.1 408"), answer[:100]
    for _, writer in stalled:
        writer.close()


async def test_a_signature_that_is_not_ascii_is_401_not_500(edge, caplog):
    import asyncio
    from urllib.parse import urlsplit

    post, fake, core, url = edge
    u = urlsplit(url)
    body = b'{"type": "event_callback", "event": {}}'
    reader, writer = await asyncio.open_connection(u.hostname, u.port)
    writer.write(
        b"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"X-Slack-Request-Timestamp: " + str(int(time.time())).encode() + b"\r\n"
        b"X-Slack-Signature: v0=\xff\xfe\r\nContent-Length: " + str(len(body)).encode() + b"\r\n"
        b"Connection: close\r\n\r\n" + body
    )
    await writer.drain()
    answer = await reader.read(65536)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    assert _no_traceback(caplog)
