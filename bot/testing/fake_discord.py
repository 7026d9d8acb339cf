"""A fake Discord on loopback: REST (``/api/v10``) and the gateway (websocket), enough for
discord.py 2.x to log in, receive events and call back.

Point discord.py at it with :meth:`FakeDiscord.patch_discord` (``Route.BASE`` and
``DiscordWebSocket.DEFAULT_GATEWAY``). The gateway speaks HELLO (op 10) → IDENTIFY (op 2)
→ READY (session id, user, guilds, application, local ``resume_gateway_url``) →
GUILD_CREATE, answers heartbeats (op 1 → op 11) and pushes MESSAGE_CREATE,
MESSAGE_REACTION_ADD/REMOVE and INTERACTION_CREATE on demand, to the shard that owns the
guild. REST checks ``Authorization: Bot <token>`` and records reaction PUTs (with the raw,
URL-encoded path), interaction callbacks, interaction follow-ups (the webhook of the
interaction's token), messages (JSON or multipart with files) and the command sync. As
Discord does, it refuses a callback more than 3 s after its interaction was dispatched
(10062 Unknown interaction) and a message over 2,000 characters (50035). Plain JSON text
frames are sent even when the client asks for zlib.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from aiohttp import WSMsgType, web

BOT_ID = "1001"
APP_ID = "1001"
GUILD_ID = "3001"
CHANNEL_ID = "4001"
MOD_ROLE_ID = "777"
NOW = "2026-11-23T12:00:00.000000+00:00"


def user(uid: str, name: str, bot: bool = False) -> dict[str, Any]:
    return {"id": uid, "username": name, "discriminator": "0", "global_name": name, "avatar": None, "bot": bot}


def member(u: dict[str, Any], roles: list[str] = (), permissions: str = "0") -> dict[str, Any]:
    return {
        "user": u,
        "roles": list(roles),
        "joined_at": NOW,
        "deaf": False,
        "mute": False,
        "flags": 0,
        "permissions": permissions,
        "nick": None,
        "avatar": None,
    }


def _json(obj: Any, status: int = 200) -> web.Response:
    # Exactly "application/json", as Discord sends it: discord.py parses nothing else as JSON.
    return web.Response(body=json.dumps(obj).encode(), status=status, headers={"Content-Type": "application/json"})


@dataclass
class Recorded:
    kind: str
    data: dict[str, Any]
    at: float = field(default_factory=time.perf_counter)


class FakeDiscord:
    def __init__(self, token: str = "fake-bot-token"):
        self.token = token
        self.records: list[Recorded] = []
        self.attachments: dict[str, bytes] = {}
        self.sockets: dict[int, web.WebSocketResponse] = {}  # shard id → connection
        self.identifies: list[dict[str, Any]] = []
        self.shard_total = 1
        self.seq = 0
        self.base = ""
        self._runner: web.AppRunner | None = None
        self._waiters: list[tuple[str, int, asyncio.Future]] = []
        self._ready = asyncio.Event()
        self._next_id = 5000
        self.dispatched: dict[str, float] = {}  # interaction id → when it was sent (monotonic)
        self.interaction_deadline = 3.0  # Discord's: seconds to the first callback

    def snowflake(self) -> str:
        self._next_id += 1
        return str((int(time.time() * 1000) - 1420070400000) << 22 | self._next_id)

    # -- server ----------------------------------------------------------------------------
    async def start(self) -> str:
        app = web.Application(client_max_size=50 * 1024 * 1024)
        app.router.add_get("/gateway", self._gateway)
        r = app.router
        r.add_get("/api/v10/users/@me", self._me)
        r.add_get("/api/v10/gateway", self._get_gateway)
        r.add_get("/api/v10/gateway/bot", self._get_gateway_bot)
        r.add_put("/api/v10/applications/{app}/commands", self._sync)
        r.add_put("/api/v10/channels/{channel}/messages/{message}/reactions/{emoji}/@me", self._react)
        r.add_post("/api/v10/interactions/{id}/{token}/callback", self._callback)
        r.add_post("/api/v10/webhooks/{app}/{token}", self._followup)
        r.add_post("/api/v10/channels/{channel}/messages", self._send)
        r.add_get("/api/v10/oauth2/applications/@me", self._application)
        r.add_get("/attachments/{name}", self._attachment)
        r.add_route("*", "/{tail:.*}", self._unknown)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base = f"http://127.0.0.1:{port}"
        return self.base

    def patch_discord(self) -> None:
        """Send discord.py's REST and gateway traffic here (process-wide: tests only)."""
        import yarl
        from discord.gateway import DiscordWebSocket
        from discord.http import Route
        from discord.webhook import async_ as webhooks

        Route.BASE = self.base + "/api/v10"
        webhooks.Route.BASE = self.base + "/api/v10"  # interaction follow-ups
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(self.base.replace("http", "ws") + "/gateway")

    async def close(self) -> None:
        for ws in list(self.sockets.values()):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def wait_ready(self, shards: int = 1, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.sockets) < shards or not self._ready.is_set():
            if time.monotonic() > deadline:
                raise TimeoutError("the bot never identified on the fake gateway")
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # discord.py dispatches on_ready after GUILD_CREATE settles

    def of(self, kind: str) -> list[Recorded]:
        return [r for r in self.records if r.kind == kind]

    async def wait_for(self, kind: str, count: int = 1, timeout: float = 30.0) -> list[Recorded]:
        if len(self.of(kind)) < count:
            fut = asyncio.get_running_loop().create_future()
            self._waiters.append((kind, count, fut))
            await asyncio.wait_for(fut, timeout)
        return self.of(kind)

    def _record(self, kind: str, data: dict[str, Any]) -> None:
        self.records.append(Recorded(kind, data))
        n = len(self.of(kind))
        for w in list(self._waiters):
            if w[0] == kind and n >= w[1] and not w[2].done():
                w[2].set_result(None)
                self._waiters.remove(w)

    def _authorised(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bot {self.token}"

    # -- REST ------------------------------------------------------------------------------
    async def _me(self, request):
        if not self._authorised(request):
            return _json({"message": "401: Unauthorized", "code": 0}, status=401)
        return _json(user(BOT_ID, "emojibot", bot=True))

    async def _application(self, request):
        if not self._authorised(request):
            return _json({"message": "401: Unauthorized", "code": 0}, status=401)
        return _json(
            {
                "id": APP_ID,
                "name": "emojibot",
                "icon": None,
                "description": "",
                "summary": "",
                "bot_public": True,
                "bot_require_code_grant": False,
                "verify_key": "0" * 64,
                "owner": user("2001", "owner"),
                "team": None,
                "flags": 0,
            }
        )

    async def _unknown(self, request):
        self._record("unknown_route", {"method": request.method, "path": request.path})
        return _json({"message": "404: Not Found", "code": 0}, status=404)

    async def _get_gateway(self, request):
        return _json({"url": self.base.replace("http", "ws") + "/gateway"})

    async def _get_gateway_bot(self, request):
        if not self._authorised(request):
            return _json({"message": "401: Unauthorized", "code": 0}, status=401)
        limit = {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}
        return _json(
            {
                "url": self.base.replace("http", "ws") + "/gateway",
                "shards": self.shard_total,
                "session_start_limit": limit,
            }
        )

    async def _sync(self, request):
        if not self._authorised(request):
            return _json({"message": "401: Unauthorized", "code": 0}, status=401)
        commands = await request.json()
        out = [
            {
                **c,
                "id": self.snowflake(),
                "application_id": APP_ID,
                "version": "1",
                "type": c.get("type", 1),
                "default_member_permissions": None,
                "dm_permission": True,
                "nsfw": False,
            }
            for c in commands
        ]
        self._record("commands", {"commands": commands})
        return _json(out)

    async def _react(self, request):
        if not self._authorised(request):
            return _json({"message": "401: Unauthorized", "code": 0}, status=401)
        raw = request.raw_path.split("/reactions/")[1].split("/")[0]
        self._record(
            "reaction",
            {
                "channel_id": request.match_info["channel"],
                "message_id": request.match_info["message"],
                "raw": raw,
                "emoji": unquote(raw),
            },
        )
        return web.Response(status=204)

    async def _payload(self, request) -> tuple[dict[str, Any], list[tuple[str, bytes]]]:
        files: list[tuple[str, bytes]] = []
        if request.content_type.startswith("multipart/"):
            payload: dict[str, Any] = {}
            reader = await request.multipart()
            async for part in reader:
                if part.name == "payload_json":
                    payload = json.loads(await part.text())
                else:
                    files.append((part.filename or part.name or "file", bytes(await part.read())))
            return payload, files
        return await request.json(), files

    @staticmethod
    def _too_long(payload: dict[str, Any]) -> web.Response | None:
        content = (payload.get("data") or payload).get("content") or ""
        if len(content) <= 2000:
            return None
        body = {"message": "Invalid Form Body", "code": 50035, "errors": {"content": "at most 2000 characters"}}
        return _json(body, status=400)

    async def _callback(self, request):
        payload, files = await self._payload(request)
        sent = self.dispatched.get(request.match_info["id"])
        if sent is not None and time.monotonic() - sent > self.interaction_deadline:
            return _json({"message": "Unknown interaction", "code": 10062}, status=404)
        if (refused := self._too_long(payload)) is not None:
            return refused
        self._record(
            "interaction_callback",
            {"id": request.match_info["id"], "token": request.match_info["token"], "payload": payload, "files": files},
        )
        if request.query.get("with_response", "").lower() not in ("1", "true"):
            return web.Response(status=204)
        data = payload.get("data") or {}
        message = self.message(CHANNEL_ID, data.get("content", ""), author=user(BOT_ID, "emojibot", bot=True))
        message["flags"] = data.get("flags", 0)
        ephemeral = bool(message["flags"] & 64)
        return _json(
            {
                "interaction": {
                    "id": request.match_info["id"],
                    "type": 2,
                    "activity_instance_id": None,
                    "response_message_id": message["id"],
                    "response_message_loading": False,
                    "response_message_ephemeral": ephemeral,
                },
                "resource": {"type": payload.get("type", 4), "message": message},
            }
        )

    async def _followup(self, request):
        """A follow-up to an interaction (its token's webhook; no bot token needed)."""
        payload, files = await self._payload(request)
        if (refused := self._too_long(payload)) is not None:
            return refused
        self._record("followup", {"token": request.match_info["token"], "payload": payload, "files": files})
        msg = self.message(CHANNEL_ID, payload.get("content", ""), author=user(BOT_ID, "emojibot", bot=True))
        msg["flags"] = payload.get("flags", 0)
        return _json(msg)

    async def _send(self, request):
        if not self._authorised(request):
            return _json({"message": "401: Unauthorized", "code": 0}, status=401)
        payload, files = await self._payload(request)
        if (refused := self._too_long(payload)) is not None:
            return refused
        channel = request.match_info["channel"]
        self._record("message", {"channel_id": channel, "payload": payload, "files": files})
        msg = self.message(channel, payload.get("content", ""), author=user(BOT_ID, "emojibot", bot=True))
        msg["attachments"] = [
            {
                "id": self.snowflake(),
                "filename": n,
                "size": len(b),
                "url": f"{self.base}/x",
                "proxy_url": f"{self.base}/x",
            }
            for n, b in files
        ]
        if payload.get("message_reference"):
            msg["message_reference"] = payload["message_reference"]
        return _json(msg)

    async def _attachment(self, request):
        """The CDN: no token needed; the body streamed in 16 KB pieces, each GET recorded as
        ``attachment`` (its Authorization header, bytes sent, whether whole)."""
        name = request.match_info["name"]
        record = {"name": name, "authorization": request.headers.get("Authorization"), "sent": 0, "whole": False}
        data = self.attachments.get(name)
        if data is None:
            self._record("attachment", record)
            return web.Response(status=404)
        resp = web.StreamResponse(headers={"Content-Type": "image/jpeg"})
        resp.content_length = len(data)
        await resp.prepare(request)
        try:
            for i in range(0, len(data), 16 * 1024):
                await resp.write(data[i : i + 16 * 1024])
                record["sent"] += len(data[i : i + 16 * 1024])
                await asyncio.sleep(0)
            await resp.write_eof()
            record["whole"] = True
        except ConnectionError:  # the client stopped reading and closed the connection
            pass
        self._record("attachment", record)
        return resp

    # -- gateway ---------------------------------------------------------------------------
    async def _gateway(self, request):
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_json({"op": 10, "d": {"heartbeat_interval": 41250}, "s": None, "t": None})
        shard_id = 0
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            op = data.get("op")
            if op == 1:
                await ws.send_json({"op": 11, "d": None, "s": None, "t": None})
            elif op == 2:
                d = data["d"]
                if d.get("token") != self.token:
                    await ws.close(code=4004, message=b"Authentication failed.")
                    break
                self.identifies.append(d)
                shard_id, total = d.get("shard", [0, 1])
                self.shard_total = total
                self.sockets[shard_id] = ws
                guilds = [g for g in (GUILD_ID,) if (int(g) >> 22) % total == shard_id]
                ready = {
                    "v": 10,
                    "user": user(BOT_ID, "emojibot", bot=True),
                    "session_id": uuid.uuid4().hex,
                    "resume_gateway_url": self.base.replace("http", "ws") + "/gateway",
                    "guilds": [{"id": g, "unavailable": True} for g in guilds],
                    "application": {"id": APP_ID, "flags": 0},
                    "shard": [shard_id, total],
                    "private_channels": [],
                    "relationships": [],
                }
                await self._send_event(ws, "READY", ready)
                for g in guilds:
                    await self._send_event(ws, "GUILD_CREATE", self.guild(g))
                self._ready.set()
            elif op == 6:
                await self._send_event(ws, "RESUMED", {})
        self.sockets = {k: v for k, v in self.sockets.items() if v is not ws}
        return ws

    async def _send_event(self, ws, name: str, data: dict[str, Any]) -> None:
        self.seq += 1
        await ws.send_json({"op": 0, "t": name, "s": self.seq, "d": data})

    async def dispatch(self, name: str, data: dict[str, Any]) -> None:
        """Push an event to the shard that owns its guild."""
        if name == "INTERACTION_CREATE":
            self.dispatched[data["id"]] = time.monotonic()
        shard = (int(data.get("guild_id", GUILD_ID)) >> 22) % max(self.shard_total, 1)
        await self._send_event(self.sockets[shard], name, data)

    # -- payloads --------------------------------------------------------------------------
    def guild(self, guild_id: str) -> dict[str, Any]:
        everyone = {
            "id": guild_id,
            "name": "@everyone",
            "permissions": "1024",
            "position": 0,
            "color": 0,
            "hoist": False,
            "managed": False,
            "mentionable": False,
            "flags": 0,
        }
        channel = {
            "id": CHANNEL_ID,
            "type": 0,
            "name": "general",
            "position": 0,
            "permission_overwrites": [],
            "guild_id": guild_id,
            "nsfw": False,
            "topic": None,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "parent_id": None,
        }
        moderators = {**everyone, "id": MOD_ROLE_ID, "name": "moderators", "position": 1}
        return {
            "id": guild_id,
            "name": "Fake Guild",
            "owner_id": "2001",
            "roles": [everyone, moderators],
            "channels": [channel],
            "members": [member(user(BOT_ID, "emojibot", bot=True))],
            "member_count": 2,
            "emojis": [],
            "stickers": [],
            "features": [],
            "threads": [],
            "voice_states": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "large": False,
            "unavailable": False,
            "joined_at": NOW,
            "premium_tier": 0,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "system_channel_flags": 0,
            "nsfw_level": 0,
            "preferred_locale": "en-US",
        }

    def message(self, channel_id: str, content: str, author: dict[str, Any], attachments=(), message_id=None):
        return {
            "id": message_id or self.snowflake(),
            "channel_id": channel_id,
            "guild_id": GUILD_ID,
            "author": author,
            "member": {k: v for k, v in member(author).items() if k != "user"},
            "content": content,
            "timestamp": NOW,
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": list(attachments),
            "embeds": [],
            "pinned": False,
            "type": 0,
            "flags": 0,
            "components": [],
        }

    def attachment(self, name: str, data: bytes, content_type: str = "image/jpeg") -> dict[str, Any]:
        self.attachments[name] = data
        return {
            "id": self.snowflake(),
            "filename": name,
            "size": len(data),
            "url": f"{self.base}/attachments/{name}",
            "proxy_url": f"{self.base}/attachments/{name}",
            "content_type": content_type,
            "width": 64,
            "height": 64,
        }

    def reaction(self, message_id: str, user_id: str, emoji: str, bot: bool = False) -> dict[str, Any]:
        return {
            "user_id": user_id,
            "channel_id": CHANNEL_ID,
            "message_id": message_id,
            "guild_id": GUILD_ID,
            "emoji": {"id": None, "name": emoji},
            "member": member(user(user_id, "someone", bot=bot)),
            "burst": False,
            "type": 0,
        }

    def interaction(
        self, name: str, options: list[dict[str, Any]], user_id: str = "2002", roles=(), permissions: str = "0"
    ) -> dict[str, Any]:
        return {
            "id": self.snowflake(),
            "application_id": APP_ID,
            "type": 2,
            "token": uuid.uuid4().hex,
            "version": 1,
            "guild_id": GUILD_ID,
            "channel_id": CHANNEL_ID,
            "channel": {"id": CHANNEL_ID, "type": 0, "guild_id": GUILD_ID, "name": "general"},
            "data": {"id": self.snowflake(), "name": name, "type": 1, "options": options},
            "member": member(user(user_id, "someone"), roles, permissions),
            "app_permissions": "0",
            "locale": "en-US",
            "guild_locale": "en-US",
            "entitlements": [],
            "attachment_size_limit": 26214400,
            "authorizing_integration_owners": {"0": GUILD_ID},
            "context": 0,
        }
