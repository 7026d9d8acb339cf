"""Slack ↔ core: Slack events and slash commands become neutral events; the core's
actions become Web API calls.

- HTTP Events API by default: :meth:`SlackAdapter.add_routes` mounts ``POST /slack/events``
  on an aiohttp app (bolt checks the signature and timestamp: 401 otherwise); Socket Mode
  with an app token via :meth:`SlackAdapter.run_socket_mode`.
- Listeners ``ack()`` first (bolt acknowledges events before its listeners run; commands
  call ``ack()`` themselves) and work after.
- Reactions use the catalog's exact Slack short names; ``already_reacted`` is a no-op;
  ``429``s are retried after ``Retry-After`` by slack_sdk's rate-limit retry handler.
- Pictures: ``url_private`` downloaded with the bot token (size-capped); the generated
  emoji is uploaded with the v2 flow into the message's thread.
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.bot import BotCore
from bot.core.events import AddReactions, Attachment, CommandInvoked, MessageCreated, ReactionChanged, Reply

PLATFORM = "slack"
log = logging.getLogger("emojibot.slack")
# Message subtypes that are people writing; edits, joins, bot posts etc. are not answered.
_ANSWERED_SUBTYPES = {None, "file_share", "thread_broadcast"}


class SlackAdapter:
    def __init__(
        self,
        core: BotCore,
        bot_token: str,
        signing_secret: str,
        base_url: str | None = None,
        max_picture_bytes: int = 10 * 1024 * 1024,
        rate_limit_retries: int = 5,
    ):
        self.core = core
        self.token = bot_token
        self.max_picture_bytes = max_picture_bytes
        self.client = AsyncWebClient(token=bot_token, base_url=base_url or AsyncWebClient.BASE_URL)
        self._session: aiohttp.ClientSession | None = None
        self.client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=rate_limit_retries))
        self.app = AsyncApp(client=self.client, signing_secret=signing_secret, process_before_response=False)
        self.bot_user_id: str | None = None
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

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    # -- HTTP and Socket Mode ------------------------------------------------------------------
    async def handle_http(self, request: web.Request) -> web.Response:
        return await to_aiohttp_response(await self.app.async_dispatch(await to_bolt_request(request)))

    def add_routes(self, app: web.Application, path: str = "/slack/events") -> None:
        app.router.add_post(path, self.handle_http)

    async def run_socket_mode(self, app_token: str) -> None:
        from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

        handler = AsyncSocketModeHandler(self.app, app_token)
        try:
            await handler.start_async()  # connects, then serves until cancelled
        finally:
            await handler.close_async()

    # -- listeners (bolt has acknowledged events before these run) -----------------------------
    async def _on_message(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        if event.get("subtype") not in _ANSWERED_SUBTYPES or "channel" not in event or "ts" not in event:
            return
        attachments = tuple([a for f in event.get("files", []) if (a := await self._download(f)) is not None])
        await self._run(
            MessageCreated(
                PLATFORM,
                body.get("event_id") or f"{event['channel']}:{event['ts']}",
                event["channel"],
                event["ts"],
                event.get("user", ""),
                event.get("text", ""),
                author_is_bot=bool(event.get("bot_id")),
                attachments=attachments,
            )
        )

    async def _on_reaction(self, body: dict[str, Any], event: dict[str, Any], added: bool) -> None:
        item = event.get("item", {})
        if item.get("type") != "message":
            return
        await self._run(
            ReactionChanged(
                PLATFORM,
                body["event_id"],
                item["channel"],
                item["ts"],
                event.get("user", ""),
                event.get("reaction", ""),
                added,
            )
        )

    async def _on_reaction_added(self, body, event) -> None:
        await self._on_reaction(body, event, True)

    async def _on_reaction_removed(self, body, event) -> None:
        await self._on_reaction(body, event, False)

    async def _on_command(self, ack, command: dict[str, Any], name: str) -> None:
        await ack()  # Slack wants an answer within 3 s; the work comes after
        await self._run(
            CommandInvoked(
                PLATFORM,
                "cmd-" + command.get("trigger_id", ""),
                command["channel_id"],
                command["user_id"],
                name,
                command.get("text", ""),
            ),
            user=command["user_id"],
        )

    async def _on_emojify(self, ack, command) -> None:
        await self._on_command(ack, command, "emojify")

    async def _on_admin(self, ack, command) -> None:
        await self._on_command(ack, command, "emojify-admin")

    async def _download(self, f: dict[str, Any]) -> Attachment | None:
        mimetype = f.get("mimetype", "")
        url = f.get("url_private_download") or f.get("url_private")
        if not mimetype.startswith("image/") or not url:
            return None
        size = int(f.get("size", 0))
        if size > self.max_picture_bytes:
            log.info("picture %s is %d bytes, over the cap: not downloaded", f.get("id"), size)
            return None
        headers = {"Authorization": f"Bearer {self.token}"}
        try:
            async with aiohttp.ClientSession() as s, s.get(url, headers=headers, allow_redirects=False) as r:
                if r.status != 200:
                    log.warning("download of %s failed: HTTP %d", f.get("id"), r.status)
                    return None
                data = await r.content.read(self.max_picture_bytes + 1)
        except aiohttp.ClientError as exc:
            log.warning("download of %s failed: %s", f.get("id"), exc)
            return None
        return Attachment(f.get("name", "picture"), mimetype, len(data), data)

    # -- actions -------------------------------------------------------------------------------
    async def _run(self, event, user: str | None = None) -> None:
        try:
            actions = await self.core.handle(event)
        except Exception:
            log.exception("handling %s failed", type(event).__name__)
            return
        for action in actions:
            try:
                await self._act(action, user)
            except SlackApiError as exc:
                log.warning("Slack refused %s: %s", type(action).__name__, exc.response.get("error"))

    async def _act(self, action, user: str | None) -> None:
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
            if action.ephemeral and user:
                await self.client.chat_postEphemeral(channel=action.channel_id, user=user, text=action.text)
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
