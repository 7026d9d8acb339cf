"""aiohttp web playground: a chat page over the same ``BotCore`` the platforms use.

Routes: ``GET /`` the page; ``POST /api/messages`` (JSON text, or multipart with a
picture) → the bot's reactions and replies; ``POST /api/commands`` (``/emojify``,
``/emojify-admin``); ``POST /api/reactions`` (clicking an emoji under a message records
feedback exactly as a platform reaction does); ``GET /healthz``.
Each browser gets a random user id in a cookie; the playground's channel auto-reacts.
"""

from __future__ import annotations

import base64
import logging
import uuid
from pathlib import Path

from aiohttp import web

from bot.core.bot import BotCore
from bot.core.events import AddReactions, Attachment, CommandInvoked, MessageCreated, ReactionChanged, Reply

PLATFORM = "web"
PLAYGROUND_CHANNEL = "playground"
PAGE = Path(__file__).with_name("page.html")
CORE_KEY = web.AppKey("core", BotCore)
log = logging.getLogger("emojibot.web")


def _user(request: web.Request) -> str:
    return request.cookies.get("emojibot_user") or "web-" + uuid.uuid4().hex[:12]


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


def _respond(request: web.Request, payload: dict, user: str, status: int = 200) -> web.Response:
    resp = web.json_response(payload, status=status)
    if request.cookies.get("emojibot_user") != user:
        resp.set_cookie("emojibot_user", user, httponly=True, samesite="Strict")
    return resp


def _error(message: str, status: int = 400) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def page(request: web.Request) -> web.Response:
    return web.Response(text=PAGE.read_text(encoding="utf-8"), content_type="text/html", charset="utf-8")


async def healthz(request: web.Request) -> web.Response:
    core = request.app[CORE_KEY]
    return web.json_response(
        {"status": "ok", "model_version": core.model_version, "pictures": core.pictures is not None}
    )


async def post_message(request: web.Request) -> web.Response:
    core = request.app[CORE_KEY]
    user = _user(request)
    attachments: tuple[Attachment, ...] = ()
    if request.content_type.startswith("multipart/"):
        form = await request.post()
        text = str(form.get("text", ""))
        f = form.get("picture")
        if f is not None and hasattr(f, "file"):
            data = f.file.read()
            attachments = (Attachment(f.filename or "picture", f.content_type or "image/*", len(data), data),)
    else:
        try:
            body = await request.json()
        except ValueError:
            return _error('send JSON like {"text": "..."}')
        text = body.get("text", "") if isinstance(body, dict) else ""
        if not isinstance(text, str):
            return _error("text must be a string")
    if not text.strip() and not attachments:
        return _error("type a message or choose a picture")
    message_id = uuid.uuid4().hex
    event = MessageCreated(
        PLATFORM, uuid.uuid4().hex, PLAYGROUND_CHANNEL, message_id, user, text, attachments=attachments
    )
    actions = await core.handle(event)
    return _respond(request, {"message_id": message_id, **_json_actions(actions)}, user)


async def post_command(request: web.Request) -> web.Response:
    core = request.app[CORE_KEY]
    user = _user(request)
    try:
        body = await request.json()
    except ValueError:
        return _error('send JSON like {"command": "emojify", "text": "..."}')
    command = str(body.get("command", "")).lstrip("/")
    if command not in ("emojify", "emojify-admin"):
        return _error("command must be emojify or emojify-admin")
    # The playground runs on the user's own machine: its user is the admin of its channel.
    event = CommandInvoked(
        PLATFORM,
        uuid.uuid4().hex,
        PLAYGROUND_CHANNEL,
        user,
        command,
        str(body.get("text", "")),
        user_can_manage_server=True,
    )
    return _respond(request, _json_actions(await core.handle(event)), user)


async def post_reaction(request: web.Request) -> web.Response:
    core = request.app[CORE_KEY]
    user = _user(request)
    try:
        body = await request.json()
        message_id, emoji, added = str(body["message_id"]), str(body["emoji"]), bool(body.get("added", True))
    except (ValueError, KeyError, TypeError):
        return _error('send JSON like {"message_id": "...", "emoji": "🎉", "added": true}')
    await core.handle(ReactionChanged(PLATFORM, uuid.uuid4().hex, PLAYGROUND_CHANNEL, message_id, user, emoji, added))
    return _respond(request, {"ok": True}, user)


@web.middleware
async def errors(request: web.Request, handler):
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except Exception:  # the page shows a line, the log keeps the traceback
        log.exception("request %s %s failed", request.method, request.path)
        return _error("something went wrong on the bot's side; see its log", status=500)


def build_app(core: BotCore, max_upload_mb: float = 10.0) -> web.Application:
    app = web.Application(middlewares=[errors], client_max_size=int(max_upload_mb * 1024 * 1024) + 64 * 1024)
    app[CORE_KEY] = core
    app.router.add_get("/", page)
    app.router.add_get("/healthz", healthz)
    app.router.add_post("/api/messages", post_message)
    app.router.add_post("/api/commands", post_command)
    app.router.add_post("/api/reactions", post_reaction)
    return app
