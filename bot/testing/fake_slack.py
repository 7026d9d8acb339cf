"""A fake Slack Web API on loopback (aiohttp) that records calls, and a signed-request
sender that plays Slack's side of the Events API and slash commands.

Checks what Slack checks: ``Authorization: Bearer <bot token>`` on every call
(``not_authed`` / ``invalid_auth``), required arguments (``invalid_arguments``), emoji
names Slack knows (``invalid_name``), the same reaction twice (``already_reacted``); on
demand it answers ``429`` with ``Retry-After``. Files go through the v2 upload flow
(``files.getUploadURLExternal`` → POST bytes → ``files.completeUploadExternal``). Files the
bot downloads (``/files/<name>``, bot token only) are streamed in 16 KB pieces, as a file
host sends them, and every request is recorded in ``file_requests``.

Socket Mode as Slack runs it: ``apps.connections.open`` with the app-level token (a bot
token gets ``not_allowed_token_type``, as the app token does on every other method)
returns a one-time WebSocket URL; the server says ``hello``, then sends envelopes
(``events_api``, ``slash_commands``) that the app must acknowledge by sending back their
``envelope_id`` (with a ``payload`` for commands that answer at once). Acks are recorded
as ``socket.ack`` calls.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import ClientSession, web


@dataclass
class Call:
    method: str
    args: dict[str, Any]
    at: float = field(default_factory=time.perf_counter)


FILE_PIECE = 16 * 1024  # files are streamed in pieces of this size


class FakeSlack:
    def __init__(
        self,
        token: str = "xoxb-test-token",
        known_emoji_names: set[str] | None = None,
        app_token: str = "xapp-1-AFAKE-1-test",
    ):
        self.token = token
        self.app_token = app_token
        self.tickets: set[str] = set()  # one-time Socket Mode URLs handed out
        self.sockets: list[web.WebSocketResponse] = []
        self.names = known_emoji_names
        self.calls: list[Call] = []
        self._by_method: dict[str, list[Call]] = {}
        self.reactions: set[tuple[str, str, str]] = set()
        self.uploads: dict[str, bytes] = {}
        self.files: dict[str, bytes] = {}  # served at /files/<name> to the bot token only
        self.file_outages: dict[str, int] = {}  # name → how many downloads get 503 first
        self.unsized_files: set[str] = set()  # names served without Content-Length (chunked)
        # every GET of /files/<name>: its Authorization header, the bytes sent, whether whole
        self.file_requests: list[dict[str, Any]] = []
        self.shared: list[dict[str, Any]] = []
        self.rate_limited: dict[str, int] = {}  # method → how many calls get 429 first
        self.retry_after = 1
        self.bot_user_id = "UBOTFAKE"
        self.auth_delay = 0.0  # seconds auth.test takes (Slack on a slow day)
        # conversations the bot is not a member of: Slack refuses its messages there
        # (`not_in_channel`), though people may still run its slash commands in them
        self.outside: set[str] = set()
        # response_url keys that have expired (30 minutes) or were used 5 times
        self.expired_responses: set[str] = set()
        self.base_url = ""
        self.waiters: list[tuple[str, int, asyncio.Future]] = []
        self._runner: web.AppRunner | None = None

    # -- server --------------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        app = web.Application(client_max_size=50 * 1024 * 1024)
        app.router.add_post("/api/{method}", self._api)
        app.router.add_get("/api/{method}", self._api)
        app.router.add_post("/upload/{file_id}", self._upload)
        app.router.add_get("/files/{name}", self._download)
        app.router.add_get("/socket", self._socket)
        app.router.add_post("/response/{key}", self._response)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://{host}:{port}"
        return self.base_url + "/api/"

    async def close(self) -> None:
        for ws in list(self.sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def response_url(self) -> str:
        """A slash command's response_url, as Slack makes one for each invocation."""
        return f"{self.base_url}/response/{uuid.uuid4().hex}"

    async def _response(self, request: web.Request) -> web.Response:
        """A POST to a response_url, as Slack takes it: JSON with ``text`` and
        ``response_type``; at most 5 answers, then (or once expired) 404 with a reason."""
        key = request.match_info["key"]
        used = sum(1 for c in self.calls_of("response_url") if c.args["key"] == key)
        if key in self.expired_responses or used >= 5:
            return web.Response(status=404, text="expired_url" if key in self.expired_responses else "used_url")
        body = await request.json()
        if not isinstance(body, dict) or not isinstance(body.get("text"), str):
            return web.Response(status=400, text="invalid_payload")
        self._record("response_url", {"key": key, **body})
        return web.Response(text="ok")

    def rate_limit(self, method: str, times: int = 1, retry_after: int = 1) -> None:
        """Answer the next ``times`` calls of ``method`` with 429 and ``Retry-After``."""
        self.rate_limited[method] = times
        self.retry_after = retry_after

    def calls_of(self, method: str) -> list[Call]:
        return list(self._by_method.get(method, ()))

    async def wait_for(self, method: str, count: int = 1, timeout: float = 30.0) -> list[Call]:
        """Wait until ``count`` calls of ``method`` were recorded."""
        if len(self.calls_of(method)) < count:
            fut = asyncio.get_running_loop().create_future()
            self.waiters.append((method, count, fut))
            await asyncio.wait_for(fut, timeout)
        return self.calls_of(method)

    def _record(self, method: str, args: dict[str, Any]) -> None:
        call = Call(method, args)
        self.calls.append(call)
        self._by_method.setdefault(method, []).append(call)  # the bench records 30,000 calls: no rescans
        n = len(self._by_method[method])
        for w in list(self.waiters):
            if w[0] == method and n >= w[1] and not w[2].done():
                w[2].set_result(None)
                self.waiters.remove(w)

    @staticmethod
    def _ok(**extra) -> web.Response:
        return web.json_response({"ok": True, **extra})

    @staticmethod
    def _err(error: str, status: int = 200) -> web.Response:
        return web.json_response({"ok": False, "error": error}, status=status)

    async def _args(self, request: web.Request) -> dict[str, Any]:
        args: dict[str, Any] = dict(request.query)
        if request.method == "POST":
            if request.content_type == "application/json":
                body = await request.json()
                args.update(body if isinstance(body, dict) else {})
            elif request.content_type == "application/x-www-form-urlencoded":
                args.update(dict(parse_qsl(await request.text())))
            elif request.content_type.startswith("multipart/"):
                form = await request.post()
                args.update({k: v for k, v in form.items() if isinstance(v, str)})
        return args

    def _authorised(self, request: web.Request, args: dict[str, Any], method: str = "") -> str | None:
        auth = request.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else args.get("token")
        if not token:
            return "not_authed"
        wanted = self.app_token if method == "apps.connections.open" else self.token
        if token != wanted:
            return "not_allowed_token_type" if token in (self.token, self.app_token) else "invalid_auth"
        return None

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args = await self._args(request)
        problem = self._authorised(request, args, method)
        if problem:
            return self._err(problem)
        if self.rate_limited.get(method, 0) > 0:
            self.rate_limited[method] -= 1
            self._record("ratelimited:" + method, args)
            resp = self._err("ratelimited", status=429)
            resp.headers["Retry-After"] = str(self.retry_after)
            return resp
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if handler is None:
            return self._err("unknown_method")
        return await handler(args)

    def _need(self, args: dict[str, Any], *names: str) -> str | None:
        missing = [n for n in names if not args.get(n)]
        return f"invalid_arguments (missing {', '.join(missing)})" if missing else None

    async def _m_auth_test(self, args):
        if self.auth_delay:
            await asyncio.sleep(self.auth_delay)
        self._record("auth.test", args)
        return self._ok(
            user_id=self.bot_user_id,
            bot_id="BFAKE",
            team_id="TFAKE",
            team="fake",
            user="emojibot",
            url="https://fake.slack.com/",
        )

    async def _m_reactions_add(self, args):
        if err := self._need(args, "channel", "timestamp", "name"):
            return self._err(err)
        name = args["name"].strip(":")
        if self.names is not None and name.split("::")[0] not in self.names:
            return self._err("invalid_name")
        key = (args["channel"], args["timestamp"], name)
        if key in self.reactions:
            self._record("already_reacted", args)
            return self._err("already_reacted")
        self.reactions.add(key)
        self._record("reactions.add", args)
        return self._ok()

    async def _m_chat_postMessage(self, args):
        if err := self._need(args, "channel", "text"):
            return self._err(err)
        if args["channel"] in self.outside:
            return self._err("not_in_channel")
        self._record("chat.postMessage", args)
        return self._ok(channel=args["channel"], ts=f"{time.time():.6f}")

    async def _m_chat_postEphemeral(self, args):
        if err := self._need(args, "channel", "user", "text"):
            return self._err(err)
        if args["channel"] in self.outside:
            return self._err("not_in_channel")
        self._record("chat.postEphemeral", args)
        return self._ok(message_ts=f"{time.time():.6f}")

    async def _m_files_getUploadURLExternal(self, args):
        if err := self._need(args, "filename", "length"):
            return self._err(err)
        file_id = "F" + uuid.uuid4().hex[:10].upper()
        self._record("files.getUploadURLExternal", args)
        return self._ok(upload_url=f"{self.base_url}/upload/{file_id}", file_id=file_id)

    async def _upload(self, request: web.Request) -> web.Response:
        file_id = request.match_info["file_id"]
        if request.content_type.startswith("multipart/"):
            form = await request.post()
            part = next(iter(form.values()))
            data = part.file.read() if hasattr(part, "file") else str(part).encode()
        else:
            data = await request.read()
        self.uploads[file_id] = data
        return web.Response(text=f"OK - {len(data)}")

    async def _m_files_completeUploadExternal(self, args):
        if err := self._need(args, "files"):
            return self._err(err)
        files = json.loads(args["files"]) if isinstance(args["files"], str) else args["files"]
        if any(f["id"] not in self.uploads for f in files):
            return self._err("file_not_found")
        share = {
            "files": files,
            "channel_id": args.get("channel_id"),
            "thread_ts": args.get("thread_ts"),
            "initial_comment": args.get("initial_comment"),
            "bytes": [self.uploads[f["id"]] for f in files],
        }
        self.shared.append(share)
        self._record("files.completeUploadExternal", args)
        return self._ok(files=[{"id": f["id"], "title": f.get("title")} for f in files])

    async def _m_files_info(self, args):
        if err := self._need(args, "file"):
            return self._err(err)
        self._record("files.info", args)
        return self._ok(file={"id": args["file"], "name": "file", "shares": {}})

    # -- Socket Mode ------------------------------------------------------------------------
    async def _m_apps_connections_open(self, args):
        ticket = uuid.uuid4().hex
        self.tickets.add(ticket)
        self._record("apps.connections.open", args)
        return self._ok(url=self.base_url.replace("http://", "ws://") + f"/socket?ticket={ticket}")

    async def _socket(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        if ticket not in self.tickets:
            return web.Response(status=401, text="invalid or used ticket")
        self.tickets.discard(ticket)  # a URL is good for one connection
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.sockets.append(ws)
        await ws.send_json(
            {
                "type": "hello",
                "num_connections": len(self.sockets),
                "debug_info": {"host": "fake-slack", "approximate_connection_time": 18060},
                "connection_info": {"app_id": "AFAKE"},
            }
        )
        try:
            async for msg in ws:
                if msg.type != 1:  # aiohttp.WSMsgType.TEXT; pings are answered by aiohttp
                    continue
                ack = json.loads(msg.data)
                if "envelope_id" in ack:
                    self._record("socket.ack", ack)
        finally:
            self.sockets.remove(ws)
        return ws

    async def wait_for_socket(self, timeout: float = 10.0) -> None:
        """Wait until the app has connected over Socket Mode."""
        deadline = time.monotonic() + timeout
        while not self.sockets:
            if time.monotonic() > deadline:
                raise TimeoutError("the app never connected over Socket Mode")
            await asyncio.sleep(0.02)

    async def _envelope(self, kind: str, payload: dict[str, Any], accepts_response: bool, retry: int = 0) -> str:
        if not self.sockets:
            raise RuntimeError("no Socket Mode connection")
        envelope_id = str(uuid.uuid4())
        envelope = {"envelope_id": envelope_id, "type": kind, "payload": payload}
        envelope["accepts_response_payload"] = accepts_response
        if kind == "events_api":
            envelope.update(retry_attempt=retry, retry_reason="timeout" if retry else "")
        await self.sockets[-1].send_json(envelope)
        return envelope_id

    async def socket_event(self, event: dict[str, Any], event_id: str | None = None, retry: int = 0) -> str:
        """Send an Events API envelope over the socket; returns its envelope id."""
        return await self._envelope("events_api", event_callback(event, event_id), False, retry)

    async def socket_command(self, command: str, text: str, user: str = "U1", channel: str = "C1") -> str:
        return await self._envelope("slash_commands", command_fields(command, text, user, channel), True)

    async def _download(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        auth = request.headers.get("Authorization")
        record = {"name": name, "authorization": auth, "sent": 0, "whole": False, "done": False}
        self.file_requests.append(record)
        problem = self._authorised(request, {})
        if problem:  # Slack answers a login page, not the file, without the token
            record["done"] = True
            return web.Response(status=302, headers={"Location": "https://fake.slack.com/login"})
        if self.file_outages.get(name, 0) > 0:  # the file host is having a bad moment
            self.file_outages[name] -= 1
            record["done"] = True
            return web.Response(status=503, text="upstream unavailable")
        data = self.files.get(name)
        if data is None:
            record["done"] = True
            return web.Response(status=404)
        # As a file host does: the body in pieces, each sent as it is ready (a client that
        # reads once gets the first piece only).
        resp = web.StreamResponse(headers={"Content-Type": "image/jpeg"})
        if name not in self.unsized_files:
            resp.content_length = len(data)
        await resp.prepare(request)
        try:
            for i in range(0, len(data), FILE_PIECE):
                await resp.write(data[i : i + FILE_PIECE])
                record["sent"] += len(data[i : i + FILE_PIECE])
                await asyncio.sleep(0)
            await resp.write_eof()
            record["whole"] = True
        except ConnectionError:  # the client stopped reading and closed the connection
            pass
        finally:
            record["done"] = True
        return resp

    def file_url(self, name: str) -> str:
        return f"{self.base_url}/files/{name}"


def event_callback(event: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
    """The Events API body Slack wraps an event in."""
    return {
        "token": "legacy",
        "team_id": "TFAKE",
        "api_app_id": "AFAKE",
        "type": "event_callback",
        "event_id": event_id or "Ev" + uuid.uuid4().hex[:10].upper(),
        "event_time": int(time.time()),
        "event": event,
        "authorizations": [{"team_id": "TFAKE", "user_id": "UBOTFAKE", "is_bot": True}],
    }


def command_fields(
    command: str, text: str, user: str = "U1", channel: str = "C1", response_url: str = "http://127.0.0.1:9/unused"
) -> dict[str, str]:
    """The fields of a slash-command invocation (``response_url``: by default one off Slack's
    hosts, which the bot does not call; :meth:`FakeSlack.response_url` for one it answers)."""
    return {
        "token": "legacy",
        "team_id": "TFAKE",
        "channel_id": channel,
        "user_id": user,
        "command": command,
        "text": text,
        "trigger_id": uuid.uuid4().hex,
        "response_url": response_url,
        "api_app_id": "AFAKE",
    }


class SlackSender:
    """Plays Slack's side: signed Events API and slash-command requests to the bot."""

    def __init__(self, url: str, signing_secret: str):
        self.url = url
        self.secret = signing_secret.encode()
        self.session: ClientSession | None = None

    async def __aenter__(self) -> SlackSender:
        self.session = ClientSession()
        return self

    async def __aexit__(self, *exc) -> None:
        assert self.session is not None
        await self.session.close()

    def sign(self, body: str, timestamp: int | None = None) -> dict[str, str]:
        ts = str(int(time.time()) if timestamp is None else timestamp)
        sig = hmac.new(self.secret, f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
        return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={sig}"}

    async def post(self, body: str, content_type: str, headers: dict[str, str] | None = None):
        assert self.session is not None
        h = {"Content-Type": content_type, **(headers if headers is not None else self.sign(body))}
        async with self.session.post(self.url, data=body.encode(), headers=h) as r:
            return r.status, await r.text()

    async def event(
        self, event: dict[str, Any], event_id: str | None = None, retry: int = 0, headers: dict[str, str] | None = None
    ):
        body = json.dumps(event_callback(event, event_id))
        h = headers if headers is not None else self.sign(body)
        if retry:
            h = {**h, "X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"}
        return await self.post(body, "application/json", h)

    async def deliver(
        self, event: dict[str, Any], event_id: str | None = None, retry_delays: tuple[float, ...] = (0.5, 1.0, 2.0)
    ) -> list[int]:
        """Deliver an event as Slack does: a non-2xx answer (or no answer) is retried with
        ``X-Slack-Retry-Num`` / ``X-Slack-Retry-Reason: http_error``, three times by
        default. Slack waits about 1 and 5 minutes between tries; ``retry_delays`` is
        shorter here so a test can wait for it. Returns the status of every try."""
        import aiohttp

        body = json.dumps(event_callback(event, event_id))
        statuses = []
        for attempt in range(len(retry_delays) + 1):
            h = self.sign(body)
            if attempt:
                h = {**h, "X-Slack-Retry-Num": str(attempt), "X-Slack-Retry-Reason": "http_error"}
            try:
                status, _ = await self.post(body, "application/json", h)
            except (TimeoutError, aiohttp.ClientError):
                status = 0
            statuses.append(status)
            if 200 <= status < 300 or attempt == len(retry_delays):
                break
            await asyncio.sleep(retry_delays[attempt])
        return statuses

    async def command(self, command: str, text: str, user: str = "U1", channel: str = "C1", **fields: str):
        from urllib.parse import urlencode

        body = urlencode(command_fields(command, text, user, channel, **fields))
        return await self.post(body, "application/x-www-form-urlencoded")


TEST_SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


async def serve_bot_on_fake_slack(core, known_emoji_names=(), secret: str = TEST_SIGNING_SECRET):
    """A fake Slack and the bot's Slack adapter serving ``POST /slack/events`` on loopback:
    (fake, adapter, test server). The caller closes all three."""
    from aiohttp.test_utils import TestServer

    from bot.adapters.slack import SlackAdapter

    fake = FakeSlack(known_emoji_names=set(known_emoji_names))
    api = await fake.start()
    adapter = SlackAdapter(core, fake.token, secret, base_url=api)
    await adapter.start()
    app = web.Application()
    adapter.add_routes(app)
    server = TestServer(app)
    await server.start_server()
    return fake, adapter, server
