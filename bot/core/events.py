"""Platform-neutral events in, platform-neutral actions out. Adapters translate both ways."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    size: int
    data: bytes | None = None  # the adapter downloads pictures before handing them to the core


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


Event = MessageCreated | ReactionChanged | CommandInvoked


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
