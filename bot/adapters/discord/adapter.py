"""Discord ↔ core.

- Intents: guilds, guild messages, **message content** (privileged: switch it on in the
  developer portal), guild reactions. Reactions arrive as ``on_raw_reaction_add/remove``
  so feedback works on messages no longer in the cache.
- ``/emojify`` and ``/emojify-admin`` are application commands on a ``CommandTree``,
  synced in ``setup_hook``; their answers are ephemeral interaction responses.
- Reactions are added with the Unicode emoji (discord.py URL-encodes it); pictures are
  downloaded from the attachment URL (streamed, whole, up to the size cap:
  :mod:`bot.adapters.download`) and answered with a reply that carries the novel emoji as
  a file.
- Message and command texts reach the core as a person reads them (:func:`plain_text`):
  mentions ``<@123>`` as ``@user``, channels ``<#123>`` as ``#channel``, a custom emoji
  ``<:partyparrot:123>`` as its name, timestamps ``<t:1618953630:R>`` left out.
- Sharding: ``shard_count`` / ``shard_ids`` make it an ``AutoShardedClient``.
- Nothing received is lost: messages and reactions go into the core's durable inbox
  (:class:`bot.core.pipeline.EventPipeline`) and are marked done when their reactions and
  replies are. The gateway never sends an event twice, so when the store is down an event
  waits in memory (``hold``) until it is back; only those can be lost, at a shutdown
  during an outage, and ``serve`` then exits non-zero. A refusal Discord would repeat
  (403, 404) is :class:`PermanentFailure`; a 5xx or a network fault is retried.
"""

from __future__ import annotations

import io
import logging
import re
import uuid

import aiohttp
import discord
from discord import app_commands

from bot.adapters.download import fetch_capped, with_first_picture
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

PLATFORM = "discord"
log = logging.getLogger("emojibot.discord")

# Discord's markup in message content (https://discord.com/developers/docs/reference#message-formatting)
_MARKUP = re.compile(r"<(?:(@!?|@&|#)\d+|a?:(\w+):\d+|t:-?\d+(?::[tTdDfFR])?|(/[\w -]+):\d+)>")


def _plain(m: re.Match, user_ids: bool = False) -> str:
    kind, emoji, command = m.groups()
    if kind is not None:
        if user_ids and kind in ("@", "@!"):  # a command's argument: the person it names
            return "@" + m.group(0).strip("<@!>")
        return {"@&": "@role", "#": "#channel"}.get(kind, "@user")
    if emoji is not None:  # a custom emoji: its name is all a reader sees of it
        return emoji
    if command is not None:  # a slash command mention shows as /name
        return command
    return ""  # a timestamp (each reader sees it in their own time zone)


def plain_text(content: str, user_ids: bool = False) -> str:
    """A message's or command's text as a person reads it (see the module's text);
    ``user_ids``: a user mention keeps its id (``@123``), for a command that names a person
    (`/emojify-admin export @someone`)."""
    if "<" not in content:
        return content
    return _MARKUP.sub(lambda m: _plain(m, user_ids), content)


MESSAGE_LIMIT = 2_000  # characters of one Discord message's content


def message_parts(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """``text`` in messages Discord takes (at most ``limit`` characters each), cut at line
    ends where it can: Discord refuses a longer one (400), and an admin's export runs to
    3,000 characters."""
    parts: list[str] = []
    current = ""
    for line in text.split("\n"):
        while len(line) > limit:  # a line longer than a message: cut it
            if current:
                parts.append(current)
                current = ""
            parts.append(line[:limit])
            line = line[limit:]
        joined = f"{current}\n{line}" if current else line
        if len(joined) > limit:
            parts.append(current)
            joined = line
        current = joined
    if current or not parts:
        parts.append(current)
    return parts


# Exactly what the bot does: read channels and history, react, reply (with a file).
PERMISSIONS = discord.Permissions(
    view_channel=True,
    read_message_history=True,
    add_reactions=True,
    send_messages=True,
    send_messages_in_threads=True,
    attach_files=True,
)


def invite_url(client_id: int | str) -> str:
    """The OAuth2 URL that adds the bot to a server with exactly the permissions it needs."""
    return discord.utils.oauth_url(int(client_id), permissions=PERMISSIONS, scopes=("bot", "applications.commands"))


def intents() -> discord.Intents:
    i = discord.Intents.none()
    i.guilds = True
    i.guild_messages = True
    i.message_content = True
    i.guild_reactions = True
    return i


class DiscordAdapter:
    platform = PLATFORM

    def __init__(
        self,
        core: BotCore,
        token: str,
        shard_count: int | None = None,
        shard_ids: list[int] | None = None,
        max_picture_bytes: int = 10 * 1024 * 1024,
        sync_commands: bool = True,
    ):
        self.core = core
        self.token = token
        self.max_picture_bytes = max_picture_bytes
        self.sync_commands = sync_commands
        self._session: aiohttp.ClientSession | None = None  # attachment downloads
        if shard_count or shard_ids:
            self.client: discord.Client = discord.AutoShardedClient(
                intents=intents(), shard_count=shard_count, shard_ids=shard_ids
            )
        else:
            self.client = discord.Client(intents=intents())
        self.tree = app_commands.CommandTree(self.client)
        self._register()
        core.pipeline.register(self)

    # -- lifecycle -------------------------------------------------------------------------
    async def run(self) -> None:
        """Log in and stay connected (reconnecting as discord.py does) until closed."""
        await self.core.pipeline.start()  # replays what an earlier run handed back
        async with self.client:
            await self.client.start(self.token)

    async def close(self) -> None:
        await self.client.close()
        if self._session is not None:
            await self._session.close()

    def _downloads(self) -> aiohttp.ClientSession:
        """The adapter's own HTTP session for attachment downloads (made on first use)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    def _register(self) -> None:
        client, tree = self.client, self.tree

        async def setup_hook() -> None:
            if self.sync_commands:
                await tree.sync()

        client.setup_hook = setup_hook  # type: ignore[method-assign]

        @client.event
        async def on_ready() -> None:
            assert client.user is not None
            self.core.bot_user_ids.add(str(client.user.id))
            log.info("Discord: logged in as %s (%s guilds)", client.user, len(client.guilds))

        @client.event
        async def on_message(message: discord.Message) -> None:
            await self._on_message(message)

        @client.event
        async def on_raw_reaction_add(payload: discord.RawReactionActionEvent) -> None:
            await self._on_reaction(payload, True)

        @client.event
        async def on_raw_reaction_remove(payload: discord.RawReactionActionEvent) -> None:
            await self._on_reaction(payload, False)

        @tree.command(name="emojify", description="The 5 emojis that fit a text best (only you see the answer)")
        @app_commands.describe(text="the text to find emojis for (leave empty for help)")
        async def emojify(interaction: discord.Interaction, text: str = "") -> None:
            await self._on_command(interaction, "emojify", text)

        @tree.command(
            name="emojify-admin", description="Channel settings (admins): auto-react, threshold, emojis never used"
        )
        @app_commands.describe(
            action="on|off | threshold X | count N | learning on|off | never 😘 | allow 😘 | export ID | status"
        )
        async def emojify_admin(interaction: discord.Interaction, action: str = "help") -> None:
            await self._on_command(interaction, "emojify-admin", action)

    # -- events ----------------------------------------------------------------------------
    async def _on_message(self, message: discord.Message) -> None:
        attachments = tuple(
            Attachment(a.filename, a.content_type or "image/*", a.size, url=a.url)
            for a in message.attachments
            if (a.content_type or "").startswith("image/")
        )
        event = MessageCreated(
            PLATFORM,
            f"message:{message.id}",
            str(message.channel.id),
            str(message.id),
            str(message.author.id),
            plain_text(message.content or ""),
            author_is_bot=message.author.bot,
            attachments=attachments,
        )
        await self._submit(event)

    async def _submit(self, event: Event) -> None:
        try:
            await self.core.pipeline.submit(event, hold=True)
        except ShuttingDown:
            pass  # arrived during shutdown with the store down: the pipeline logged and counted it dropped

    async def _on_reaction(self, payload: discord.RawReactionActionEvent, added: bool) -> None:
        if payload.emoji.id is not None:  # a server's custom emoji: not in the catalog, kept by name
            emoji = f":{payload.emoji.name}:"
        else:
            emoji = str(payload.emoji.name)
        is_bot = bool(payload.member.bot) if payload.member is not None else False
        # The gateway carries no event id; a reaction is one user's action at one moment.
        event = ReactionChanged(
            PLATFORM,
            f"reaction:{uuid.uuid4().hex}",
            str(payload.channel_id),
            str(payload.message_id),
            str(payload.user_id),
            emoji,
            added,
            user_is_bot=is_bot,
        )
        await self._submit(event)

    async def _on_command(self, interaction: discord.Interaction, name: str, text: str) -> None:
        # Discord drops an interaction not answered within 3 s, and the store may take longer
        # (a lock, an outage's timeouts): "thinking…" at once, the answer as follow-ups
        await interaction.response.defer(ephemeral=True, thinking=True)
        user = interaction.user
        roles = tuple(str(r.id) for r in getattr(user, "roles", []))
        perms = getattr(user, "guild_permissions", None)
        event = CommandInvoked(
            PLATFORM,
            f"interaction:{interaction.id}",
            str(interaction.channel_id),
            str(user.id),
            name,
            plain_text(text, user_ids=True),
            user_role_ids=roles,
            user_can_manage_server=bool(perms and perms.manage_guild),
        )
        try:
            actions = await self.core.handle(event)
        except StoreUnavailable as exc:
            log.warning("command /%s not taken: %s", name, exc)
            answer = BUSY_TEXT
        except Exception as exc:
            log.error("command /%s failed: %s: %s", name, type(exc).__name__, str(exc)[:200])
            answer = "Something went wrong on my side."
        else:
            answer = "\n".join(a.text for a in actions if isinstance(a, Reply)) or "Done."
        for part in message_parts(answer):
            await interaction.followup.send(part, ephemeral=True)

    # -- the pipeline's surface ------------------------------------------------------------
    async def hydrate(self, event: Event) -> Event:
        """The message with its first picture downloaded (:func:`with_first_picture`)."""
        if not isinstance(event, MessageCreated) or not event.attachments:
            return event
        return await with_first_picture(event, self._fetch)

    async def _fetch(self, a: Attachment) -> bytes | None:
        # Attachment.read() would take any length into memory: streamed, capped (no token needed)
        if a.size > self.max_picture_bytes or not a.url:
            log.info("attachment %s is %d bytes, over the cap: not downloaded", a.filename, a.size)
            return None
        return await fetch_capped(self._downloads(), a.url, self.max_picture_bytes)

    async def act(self, action: Action, event: Event) -> None:
        try:
            await self._act(action, None)
        except (discord.Forbidden, discord.NotFound) as exc:
            raise PermanentFailure(f"Discord answered {exc.status}: {exc.text[:200]}") from exc
        except discord.HTTPException as exc:
            if exc.status >= 500 or exc.status == 429:
                raise
            raise PermanentFailure(f"Discord answered {exc.status}: {exc.text[:200]}") from exc

    def _channel(self, channel_id: str, channel):
        return channel if channel is not None else self.client.get_partial_messageable(int(channel_id))

    async def _act(self, action, channel) -> None:
        if isinstance(action, AddReactions):
            msg = self._channel(action.channel_id, channel).get_partial_message(int(action.message_id))
            for e in action.emojis:
                await msg.add_reaction(e.char)
        elif isinstance(action, Reply):
            ch = self._channel(action.channel_id, channel)
            ref = None
            if action.thread_of:
                ref = discord.MessageReference(
                    message_id=int(action.thread_of), channel_id=int(action.channel_id), fail_if_not_exists=False
                )
            file = discord.File(io.BytesIO(action.image_png), filename=action.image_name) if action.image_png else None
            kwargs = {"reference": ref, "mention_author": False}
            if file is not None:
                kwargs["file"] = file
            await ch.send(action.text, **kwargs)
