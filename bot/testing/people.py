"""Simulated people for the learning tests and `emojibot bench retrain`: everyday messages
and the reactions people add to them, sent through the bot's core as a platform would.

The messages come from small templates (food plans, office chatter) combined at random, so
that held-out messages "of the same kind" can be drawn that were never stored.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterable

from bot.core.events import MessageCreated, ReactionChanged

_FOOD = (
    ["anyone", "who's", "team", "we're", "let's", "guys,", "so", "ok", "hey, anyone", "quick poll:"],
    ["up for", "getting", "ordering", "grabbing", "craving", "planning", "thinking about", "want", "in for"],
    ["lunch", "dinner", "takeout", "food", "snacks", "something to eat", "a bite", "supper", "delivery", "brunch"],
    ["today", "tonight", "after work", "at noon", "before the meeting", "this friday", "at the usual place",
     "downtown", "for the team", "on saturday"],
)  # fmt: skip
_CHATTER = (
    ["the meeting", "the standup", "the review", "the deploy", "the report", "the call", "the sync", "the demo"],
    ["moved to", "is at", "got pushed to", "starts at", "is done by", "runs until", "was set for"],
    ["3pm", "noon", "tomorrow morning", "monday", "next week", "4:30", "the afternoon", "later today"],
    ["", ", fyi", ", heads up", " btw", ", see calendar", ", thanks", ", ok?"],
)


def _combos(parts, n: int, seed: int, skip: int = 0) -> list[str]:
    combos = list(itertools.product(*parts))
    random.Random(seed).shuffle(combos)
    if skip + n > len(combos):
        raise ValueError(f"only {len(combos)} distinct messages of this kind")
    return [" ".join(c).replace(" ,", ",").strip() for c in combos[skip : skip + n]]


def food_messages(n: int, seed: int = 1, skip: int = 0) -> list[str]:
    """``n`` distinct food-plan messages; ``skip`` draws others from the same shuffle."""
    return [m + "?" for m in _combos(_FOOD, n, seed, skip)]


def chatter_messages(n: int, seed: int = 2, skip: int = 0) -> list[str]:
    return _combos(_CHATTER, n, seed, skip)


async def feed(
    core,
    rows: Iterable[tuple[str, str, list[tuple[str, str]]]],
    platform: str = "web",
    channel: str = "C-learn",
    prefix: str = "m",
) -> int:
    """Send each (text, author, [(user, emoji), ...]) as a message and the reactions people
    add to it, through ``core.handle`` (claimed and logged as a platform's events are).
    Returns how many events were sent."""
    n = 0
    for i, (text, author, reactions) in enumerate(rows):
        mid = f"{prefix}{i}"
        await core.handle(MessageCreated(platform, f"{prefix}-ev{i}", channel, mid, author, text))
        n += 1
        for j, (user, emoji) in enumerate(reactions):
            await core.handle(ReactionChanged(platform, f"{prefix}-ev{i}-r{j}", channel, mid, user, emoji, True))
            n += 1
    return n
