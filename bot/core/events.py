"""Platform-neutral events in, platform-neutral actions out. Adapters translate both ways."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    size: int
    data: bytes | None = field(default=None, repr=False)  # downloaded by the adapter before the core sees it
    url: str | None = None  # where the adapter downloads it from (kept for a replay; never the bytes)


@dataclass(frozen=True)
class MessageCreated:
    platform: str
    event_id: str  # the platform's unique id of this delivery's event (dedupe key)
    channel_id: str
    message_id: str
    author_id: str
    text: str
    author_is_bot: bool = False
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True)
class ReactionChanged:
    platform: str
    event_id: str
    channel_id: str
    message_id: str
    user_id: str
    emoji: str  # Unicode emoji or a short name (custom emojis are kept as given)
    added: bool
    user_is_bot: bool = False


@dataclass(frozen=True)
class CommandInvoked:
    platform: str
    event_id: str
    channel_id: str
    user_id: str
    command: str  # "emojify" or "emojify-admin"
    text: str
    user_role_ids: tuple[str, ...] = ()
    user_can_manage_server: bool = False
    # the adapter itself vouches that the caller administers the bot here (the playground:
    # its trusted-local visitor or a holder of its admin secret); whatever the policy says
    caller_is_admin: bool = False
    # where the platform takes the answer to this command, if it gives one (Slack's
    # response_url: good in any conversation, even one the bot is not in, for 30 minutes)
    reply_url: str | None = None


Event = MessageCreated | ReactionChanged | CommandInvoked
_EVENT_TYPES = {t.__name__: t for t in (MessageCreated, ReactionChanged, CommandInvoked)}


def event_to_json(event: Event) -> str:
    """The event as JSON for the durable inbox: everything but attachment bytes, which the
    adapter downloads again from ``url`` when the event is replayed."""
    d = dataclasses.asdict(event)
    if isinstance(event, MessageCreated):
        d["attachments"] = [{**a, "data": None} for a in d["attachments"]]
    return json.dumps({"type": type(event).__name__, "event": d}, ensure_ascii=False)


def event_from_json(text: str) -> Event:
    raw = json.loads(text)
    cls = _EVENT_TYPES[raw["type"]]
    d = raw["event"]
    if cls is MessageCreated:
        d["attachments"] = tuple(Attachment(**a) for a in d["attachments"])
    if cls is CommandInvoked:
        d["user_role_ids"] = tuple(d["user_role_ids"])
    return cls(**d)


@dataclass(frozen=True)
class EmojiChoice:
    char: str
    short_name: str
    score: float


@dataclass(frozen=True)
class AddReactions:
    channel_id: str
    message_id: str
    emojis: tuple[EmojiChoice, ...]


@dataclass(frozen=True)
class Reply:
    channel_id: str
    text: str
    ephemeral: bool = False  # visible only to the one who asked
    thread_of: str | None = None  # reply in the thread of this message
    image_png: bytes | None = field(default=None, repr=False)
    image_name: str = "emoji.png"
    emojis: tuple[EmojiChoice, ...] = ()


Action = AddReactions | Reply
