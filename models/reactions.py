"""Auto-react: which of a message's ranked emojis the bot adds as reactions, and a
channel's never-list (the emojis it keeps out of its reactions and answers there): how
it is read and how it is taken out of a ranking. No NumPy here: the CLI reads the
defaults when it builds its help."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import attrgetter
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from models.catalog import EmojiCatalog
    from models.ranker import Ranked

# Auto-react's defaults (a channel's admin changes them): how many emojis at most, and the
# fit an emoji needs. The bot's settings and `evaluate emojis` read them from here.
AUTO_REACT_COUNT = 3
AUTO_REACT_THRESHOLD = 0.2
MAX_NEVER = 100  # emojis a channel's never-list holds at most


class NotEmojis(ValueError):
    """Words in a never-list that are no emoji (the message names them)."""


def never_list(catalog: EmojiCatalog, text: str, limit: int | None = MAX_NEVER) -> tuple[str, ...]:
    """A never-list as a person types it ("😘 💋", ":kissing_heart: :kiss:"), as catalog
    emojis (:meth:`models.catalog.EmojiCatalog.listed`). :class:`NotEmojis` naming the
    words that are no emoji; ValueError when the list is longer than ``limit``."""
    found, unknown = catalog.listed(text)
    if unknown:
        raise NotEmojis(f"not an emoji: {' '.join(unknown)[:200]}")
    if limit is not None and len(found) > limit:
        raise ValueError(f"{len(found)} emojis, at most {limit}")
    return tuple(found)


T = TypeVar("T")


def without(
    ranked: Sequence[T], never: Sequence[str], k: int, emoji: Callable[[T], str] = attrgetter("emoji")
) -> list[T]:
    """The first ``k`` of a ranking once a channel's never-list is taken out: what its
    auto-react, picture reactions and ``/emojify`` draw from, and what ``evaluate emojis
    --never`` measures. Rank for ``k + len(never)`` so that ``k`` remain. ``emoji`` reads
    an entry's emoji (a picture's answer is (emoji, probability) pairs)."""
    return [r for r in ranked if emoji(r) not in never][:k]


def reactions(ranked: Sequence[Ranked], threshold: float) -> list[Ranked]:
    """What auto-react adds to a message: of its ranking's first emojis (the channel's
    count of them, its never-list taken out by :func:`without`), those whose fit reaches
    ``threshold``. The rank, not the fit
    alone, picks the candidates: on the tune rows, taking the best fits among the first 5,
    10 or 20 instead was less often an emoji the author used at the same number of
    reactions (README)."""
    return [r for r in ranked if r.fit >= threshold]
