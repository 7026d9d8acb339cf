"""Slack ↔ core: Slack events and slash commands become neutral events; the core's
actions become Web API calls.

- HTTP Events API by default: :meth:`SlackAdapter.add_routes` mounts ``POST /slack/events``
  on an aiohttp app (bolt checks the signature and timestamp: 401 otherwise); Socket Mode
  with an app token via :meth:`SlackAdapter.run_socket_mode`.
- Nothing acknowledged is lost: a listener only puts the event into the core's durable
  inbox (:class:`bot.core.pipeline.EventPipeline`) and Slack gets its 200 after that
  (bolt's ``process_before_response``); the work runs after the answer, and the event is
  marked done when its reactions and replies are. When the store cannot take an event,
  Slack gets a 503 (HTTP) or no envelope ack (Socket Mode) and sends it again; a slash
  command is acked with a line saying to try again.
- The adapter is the pipeline's Slack *surface*: ``hydrate`` downloads an event's pictures,
  ``act`` makes the Web API calls; an error Slack will repeat (``channel_not_found``,
  ``not_in_channel``…) is :class:`PermanentFailure`, anything else is retried.
- Message and command texts reach the core as a person reads them: Slack's markup
  (``&amp;``, ``<@U123>``, ``<https://…|label>``, ``:tada:``) made plain text
  (:mod:`bot.adapters.slack.markup`), as the tweets the ranker learned from read.
- Reactions use the catalog's exact Slack short names; ``already_reacted`` is a no-op;
  ``429``s are retried after ``Retry-After`` by slack_sdk's rate-limit retry handler.
- Pictures: ``url_private`` streamed whole up to the size cap (:mod:`bot.adapters.download`),
  with the bot token only when it is https on Slack's own hosts (``*.slack.com``), never
  following redirects; a host that is down or answers 5xx makes the event try again. The
  generated emoji is uploaded with the v2 flow into the message's thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import Any

import aiohttp
import yarl
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot.adapters.download import fetch_capped, with_first_picture
from bot.adapters.slack.markup import plain_text
from bot.core.bot import BUSY_TEXT, BotCore
from bot.core.events import (
    Action,
    AddReactions,
    Attachment,
    CommandInvoked,
    Event,
    MessageCreated,
    ReactionChanged,
    Reply,
)
from bot.core.pipeline import PermanentFailure, ShuttingDown
from bot.store.repository import StoreUnavailable

PLATFORM = "slack"
log = logging.getLogger("emojibot.slack")
# Message subtypes that are people writing; edits, joins, bot posts etc. are not answered.
ANSWERED_SUBTYPES = {None, "file_share", "thread_broadcast"}
BODY_BUDGET = 16 * 1024 * 1024  # bytes of /slack/events bodies being read at once, by their declared length
BODY_READ_S = 3.0  # a body must arrive within this (Slack itself waits 3 s for the answer)
# Web API errors worth another try later; any other error Slack would give again.
_TRANSIENT_ERRORS = {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}

# Slack serves url_private / url_private_download from files.slack.com (https, bot token in
# an Authorization header); the token goes to no host outside slack.com.
SLACK_FILE_DOMAIN = "slack.com"


def _origin(url_or_host: str) -> tuple[str, int]:
    u = yarl.URL(url_or_host if "://" in url_or_host else "http://" + url_or_host)
    return (u.host or "").lower(), int(u.port or 0)


def _host(url: str) -> str:
    try:
        return yarl.URL(url).host or "?"
    except ValueError:
        return "?"


def token_allowed(url: str, extra_origins: frozenset[tuple[str, int]] = frozenset()) -> bool:
    """Whether a GET of ``url`` may carry the bot token: https on slack.com or a subdomain
    (files.slack.com), on the default port, no user info; or one of ``extra_origins``."""
    try:
        u = yarl.URL(url)
    except ValueError:
        return False
    if not u.absolute or not u.host or u.user is not None or u.password is not None:
        return False
    host = u.host.lower()
    if (host, u.port) in extra_origins:
        return u.scheme in ("http", "https")
    on_slack = host == SLACK_FILE_DOMAIN or host.endswith("." + SLACK_FILE_DOMAIN)
    return u.scheme == "https" and u.port == 443 and on_slack


class ByteBudget:
    """A count of bytes that holders take and give back; a holder waits while the rest is
    taken (one larger than the whole takes the whole)."""

    def __init__(self, total: int):
        self.total, self.used = total, 0
        self._changed = asyncio.Condition()

    @contextlib.asynccontextmanager
    async def hold(self, n: int):
        n = max(0, min(n, self.total))
        async with self._changed:
            await self._changed.wait_for(lambda: self.used + n <= self.total)
            self.used += n
        try:
            yield
        finally:
            async with self._changed:
                self.used -= n
                self._changed.notify_all()


class MalformedEvent(ValueError):
    """A signed request whose event lacks a field or has one of the wrong type (400)."""


def _field(d: dict[str, Any], key: str, default: str | None = None) -> str:
    value = d.get(key, default)
    if not isinstance(value, str) or (default is None and not value):
        raise MalformedEvent(f"{key} must be a non-empty string" if default is None else f"{key} must be a string")
    return value


def _size(value: Any) -> int:
    try:
        return max(0, int(value or 0))
    except (TypeError, ValueError, OverflowError):
        raise MalformedEvent("files[].size must be a number") from None


class SlackAdapter:
    platform = PLATFORM

    def __init__(
        self,
        core: BotCore,
        bot_token: str,
        signing_secret: str,
        base_url: str | None = None,
        max_picture_bytes: int = 10 * 1024 * 1024,
        rate_limit_retries: int = 5,
        file_hosts: Iterable[str] = (),
    ):
        self.core = core
        # Where url_private may be fetched with the bot token: Slack's own hosts (https, *.slack.com),
        # the Web API's own origin when base_url points elsewhere (the token already goes there), and
        # file_hosts ("host:port" or a URL: a fake Slack on loopback).
        self.file_origins = frozenset(_origin(h) for h in [*file_hosts, *([base_url] if base_url else [])])
        self.token = bot_token
        self.max_picture_bytes = max_picture_bytes
        self._body_budget: ByteBudget | None = None  # made on the serving loop
        self._signing_secret = signing_secret.encode()
        self.client = AsyncWebClient(token=bot_token, base_url=base_url or AsyncWebClient.BASE_URL)
        self._session: aiohttp.ClientSession | None = None
        self.client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=rate_limit_retries))
        # process_before_response: Slack's answer waits for the listener, which only makes
        # the event durable (one group commit), so it still comes well within Slack's 3 s.
        self.app = AsyncApp(client=self.client, signing_secret=signing_secret, process_before_response=True)
        self.app.error(self._on_error)
        self.bot_user_id: str | None = None
        core.pipeline.register(self)
        self.app.event("message")(self._on_message)
        self.app.event("reaction_added")(self._on_reaction_added)
        self.app.event("reaction_removed")(self._on_reaction_removed)
        self.app.command("/emojify")(self._on_emojify)
        self.app.command("/emojify-admin")(self._on_admin)

    async def start(self) -> None:
        """Learn the bot's own user id (its messages and reactions are never answered)."""
        # One HTTP session for every Web API call (slack_sdk opens one per call otherwise).
        self._session = aiohttp.ClientSession()
        self.client.session = self._session
        me = await self.client.auth_test()
        self.bot_user_id = me["user_id"]
        self.core.bot_user_ids.add(self.bot_user_id)
        await self.core.pipeline.start()  # replays what an earlier run handed back

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    # -- HTTP and Socket Mode ------------------------------------------------------------------
    async def handle_http(self, request: web.Request) -> web.Response:
        """``POST /slack/events``: the body is read up to its own cap (1 MB, not the app's
        picture-sized limit) and must be UTF-8, a JSON object (or a form) as bolt parses it,
        with a numeric ``X-Slack-Request-Timestamp``; anything else is a 4xx with a one-line
        reason, logged without the body. Then bolt checks the signature (401) and dispatches."""
        import re

        from slack_bolt.request.async_request import AsyncBoltRequest
        from slack_bolt.request.internals import parse_body

        from bot.adapters.httpguard import Refused, decode_utf8, parse_json, refusal

        try:
            ts = request.headers.get("X-Slack-Request-Timestamp")
            if ts is not None and not re.fullmatch(r"[0-9]{1,12}", ts.strip()):
                raise Refused(400, "X-Slack-Request-Timestamp must be a whole number of seconds")
            sig = request.headers.get("X-Slack-Signature")
            if sig is not None and not re.fullmatch(r"v0=[0-9a-f]{1,128}", sig.strip()):  # bolt can't compare others
                raise Refused(401, "X-Slack-Signature is not a Slack signature")
            body_bytes = await self._read_body(request, getattr(self, "max_event_bytes", 1024 * 1024))
            # The signature first: a stranger's body is never parsed (a 1 MB JSON array of
            # `{}` is 50 MB of Python objects).
            if not self._signed(body_bytes, ts, sig):
                raise Refused(401, "invalid or missing X-Slack-Signature (or a stale timestamp)")
            raw = decode_utf8(body_bytes)
            ctype = (request.headers.get("Content-Type") or "").split(";")[0]
            if raw and (ctype == "application/json" or raw.startswith("{")):  # bolt parses it as JSON
                parsed = parse_json(raw)
                if not isinstance(parsed, dict):
                    raise Refused(400, "an Events API body must be a JSON object")
                if "event" in parsed and not isinstance(parsed["event"], dict):  # bolt matches on event.type
                    raise Refused(400, "event must be a JSON object")
            elif "payload" in raw:  # a form whose payload bolt parses as JSON
                try:
                    body = parse_body(raw, ctype)
                except RecursionError:
                    raise Refused(400, "the form's payload is JSON nested too deeply") from None
                except ValueError:
                    raise Refused(400, "the form's payload is not valid JSON") from None
                if not isinstance(body, dict):
                    raise Refused(400, "the form's payload must be a JSON object")
            try:  # bolt reads team/enterprise/authorizations here, before it checks the signature
                bolt_request = AsyncBoltRequest(body=raw, query=request.query_string, headers=request.headers)
            except (AttributeError, TypeError, KeyError, IndexError, ValueError) as exc:
                raise Refused(400, f"not a Slack request body ({type(exc).__name__} reading its ids)") from None
        except Refused as exc:
            log.info("refused a Slack request: %s", exc.reason)
            return refusal(exc)
        return await to_aiohttp_response(await self.app.async_dispatch(bolt_request))

    def _signed(self, body: bytes, ts: str | None, sig: str | None) -> bool:
        """Slack's v0 signature over the raw bytes, with a timestamp within 5 minutes."""
        import hashlib
        import hmac
        import time

        if not ts or not sig or abs(time.time() - int(ts.strip())) > 300:
            return False
        mac = hmac.new(self._signing_secret, b"v0:" + ts.strip().encode() + b":" + body, hashlib.sha256)
        return hmac.compare_digest(("v0=" + mac.hexdigest()).encode(), sig.strip().encode())

    async def _read_body(self, request: web.Request, cap: int) -> bytes:
        """Bodies being read at once hold at most ``BODY_BUDGET`` bytes, each by its declared
        length (the cap where it declares none: chunked), so 100 unsigned 1 MB bodies at
        once cannot hold +109 MB; each must arrive within ``BODY_READ_S``. A body waits only
        for bytes: a few stalled requests that declare a kilobyte each hold a few kilobytes
        (with a count of 16 bodies instead, 16 of them held every Slack event past Slack's
        own 3 s)."""
        from bot.adapters.httpguard import Refused, read_capped

        if self._body_budget is None:
            self._body_budget = ByteBudget(BODY_BUDGET)
        declared = request.content_length
        async with self._body_budget.hold(cap if declared is None else min(declared, cap)):
            try:
                return await asyncio.wait_for(read_capped(request, cap), BODY_READ_S)
            except TimeoutError:
                raise Refused(408, f"the body did not arrive within {BODY_READ_S:g} s") from None

    def add_routes(self, app: web.Application, path: str = "/slack/events", max_body_bytes: int = 1024 * 1024) -> None:
        """Mount ``POST path``; requests over ``max_body_bytes`` get 413. bolt's log line for
        a refused signature (INFO, with the whole body) is cut to one line without it."""

        class _NoBody(logging.Filter):
            emojibot_no_body = True

            def filter(self, record: logging.LogRecord) -> bool:
                if "body:" in str(record.msg):
                    record.msg, record.args = "refused a Slack request: bad signature or stale timestamp", ()
                return True

        for name in ("slack_bolt.RequestVerification", "slack_bolt.AsyncRequestVerification"):
            logger = logging.getLogger(name)
            if not any(getattr(f, "emojibot_no_body", False) for f in logger.filters):
                logger.addFilter(_NoBody())
        self.max_event_bytes = max_body_bytes
        app.router.add_post(path, self.handle_http)

    async def run_socket_mode(self, app_token: str) -> None:
        from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

        handler = AsyncSocketModeHandler(self.app, app_token)
        try:
            await handler.start_async()  # connects, then serves until cancelled
        finally:
            await handler.close_async()

    # -- listeners: make the event durable; Slack's answer goes out after them -----------------
    async def _on_error(self, error: Exception) -> BoltResponse:
        if isinstance(error, StoreUnavailable | ShuttingDown):
            log.warning("event not accepted (%s): Slack will send it again", error)
            return BoltResponse(status=503, body="not accepted now: send it again")
        if isinstance(error, MalformedEvent):
            log.warning("a signed Slack request was malformed: %s", error)
            return BoltResponse(status=400, body=f"malformed request: {error}")
        log.error("a Slack listener failed: %s: %s", type(error).__name__, str(error).splitlines()[:1])
        return BoltResponse(status=500, body="")

    async def _on_message(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        subtype = event.get("subtype")
        if subtype is not None and not isinstance(subtype, str):
            raise MalformedEvent("event.subtype must be a string")
        if subtype not in ANSWERED_SUBTYPES:
            return
        channel, ts = _field(event, "channel"), _field(event, "ts")
        files = event.get("files", [])
        if not isinstance(files, list):
            raise MalformedEvent("event.files must be a list")
        attachments = tuple(
            Attachment(
                str(f.get("name") or f.get("id") or "picture"),
                str(f.get("mimetype", "")),
                _size(f.get("size")),
                url=str(f.get("url_private_download") or f.get("url_private") or "") or None,
            )
            for f in files
            if isinstance(f, dict) and str(f.get("mimetype", "")).startswith("image/")
        )
        await self.core.pipeline.submit(
            MessageCreated(
                PLATFORM,
                str(body.get("event_id") or f"{channel}:{ts}"),
                channel,
                ts,
                _field(event, "user", ""),
                plain_text(_field(event, "text", ""), self.core.catalog),
                author_is_bot=bool(event.get("bot_id")),
                attachments=attachments,
            )
        )

    async def _on_reaction(self, body: dict[str, Any], event: dict[str, Any], added: bool) -> None:
        item = event.get("item", {})
        if not isinstance(item, dict):
            raise MalformedEvent("event.item must be an object")
        if item.get("type") != "message":
            return
        await self.core.pipeline.submit(
            ReactionChanged(
                PLATFORM,
                _field(body, "event_id"),
                _field(item, "channel"),
                _field(item, "ts"),
                _field(event, "user", ""),
                _field(event, "reaction", ""),
                added,
            )
        )

    async def _on_reaction_added(self, body, event) -> None:
        await self._on_reaction(body, event, True)

    async def _on_reaction_removed(self, body, event) -> None:
        await self._on_reaction(body, event, False)

    async def _on_command(self, ack, command: dict[str, Any], name: str) -> None:
        event = CommandInvoked(
            PLATFORM,
            "cmd-" + _field(command, "trigger_id"),
            _field(command, "channel_id"),
            _field(command, "user_id"),
            name,
            plain_text(_field(command, "text", ""), self.core.catalog),
            reply_url=command.get("response_url") if isinstance(command.get("response_url"), str) else None,
        )
        try:
            await self.core.pipeline.submit(event)
        except (StoreUnavailable, ShuttingDown) as exc:  # Slack never resends a command: say so
            log.warning("command not accepted: %s", exc)
            await ack(text=BUSY_TEXT)
            return
        await ack()  # the answer comes as an ephemeral message when it is ready (`_answer`)

    async def _on_emojify(self, ack, command) -> None:
        await self._on_command(ack, command, "emojify")

    async def _on_admin(self, ack, command) -> None:
        await self._on_command(ack, command, "emojify-admin")

    # -- the pipeline's surface ------------------------------------------------------------
    async def hydrate(self, event: Event) -> Event:
        """The message with its first picture downloaded (:func:`with_first_picture`)."""
        if not isinstance(event, MessageCreated) or not event.attachments:
            return event
        return await with_first_picture(event, self._fetch)

    async def _fetch(self, a: Attachment) -> bytes | None:
        """A Slack file, whole, streamed up to the cap; the bot token goes only to Slack's own
        file hosts (see :func:`token_allowed`), redirects are not followed."""
        if a.size > self.max_picture_bytes or not a.url:
            log.info("picture %s is %d bytes, over the cap: not downloaded", a.filename, a.size)
            return None
        if not token_allowed(a.url, self.file_origins):
            log.warning("picture %s is on %s, not a Slack file host: not downloaded", a.filename, _host(a.url))
            return None
        headers = {"Authorization": f"Bearer {self.token}"}
        async with self._http() as session:
            return await fetch_capped(session, a.url, self.max_picture_bytes, headers=headers)

    @contextlib.asynccontextmanager
    async def _http(self):
        """The adapter's HTTP session, or one for this call where it is not started."""
        if self._session is not None and not self._session.closed:
            yield self._session
        else:
            async with aiohttp.ClientSession() as session:
                yield session

    async def act(self, action: Action, event: Event) -> None:
        try:
            await self._act(action, event)
        except SlackApiError as exc:
            error = exc.response.get("error") if exc.response is not None else None
            status = exc.response.status_code if exc.response is not None else 0
            if error in _TRANSIENT_ERRORS or status >= 500:
                raise
            raise PermanentFailure(f"Slack answered {error}") from exc

    async def _answer(self, command: CommandInvoked, text: str) -> None:
        """A command's answer, seen by its caller only: through the command's response_url,
        which works in any conversation (a channel the bot was never added to, a DM with
        someone else), else, once that has expired (30 minutes, 5 answers: a replay after a
        long outage), by ``chat.postEphemeral``, which Slack refuses where the bot is not a
        member (``not_in_channel``: the caller saw nothing). A URL off Slack's hosts is not
        called. A 5xx or a lost connection is a fault worth retrying."""
        url = command.reply_url
        if url and token_allowed(url, self.file_origins):
            body = {"response_type": "ephemeral", "text": text}
            timeout = aiohttp.ClientTimeout(total=10)
            async with (
                self._http() as session,
                session.post(url, json=body, timeout=timeout, allow_redirects=False) as r,
            ):
                if r.status < 300:
                    return
                if r.status >= 500:
                    raise ConnectionError(f"Slack's response_url answered {r.status}")
                log.info("response_url answered %d (%s): posting ephemerally", r.status, (await r.text())[:40])
        elif url:
            log.warning("a command's response_url is on %s, not Slack: not called", _host(url))
        await self.client.chat_postEphemeral(channel=command.channel_id, user=command.user_id, text=text)

    async def _act(self, action, event: Event) -> None:
        command = event if isinstance(event, CommandInvoked) else None
        if isinstance(action, AddReactions):
            for e in action.emojis:
                try:
                    await self.client.reactions_add(
                        channel=action.channel_id, timestamp=action.message_id, name=e.short_name
                    )
                except SlackApiError as exc:
                    if exc.response.get("error") != "already_reacted":  # a retry after a lost answer: fine
                        raise
        elif isinstance(action, Reply):
            if action.ephemeral and command is not None:
                await self._answer(command, action.text)
            elif action.image_png:
                await self.client.files_upload_v2(
                    channel=action.channel_id,
                    thread_ts=action.thread_of,
                    file=action.image_png,
                    filename=action.image_name,
                    initial_comment=action.text,
                )
            else:
                await self.client.chat_postMessage(
                    channel=action.channel_id, text=action.text, thread_ts=action.thread_of
                )
