"""Auto-react: which of a message's ranked emojis the bot adds as reactions. No NumPy here:
the CLI reads the defaults when it builds its help."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import attrgetter
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from models.ranker import Ranked

# Auto-react's defaults (a channel's admin changes them): how many emojis at most, and the
# fit an emoji needs. The bot's settings and `evaluate emojis` read them from here.
AUTO_REACT_COUNT = 3
AUTO_REACT_THRESHOLD = 0.2


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
    """What auto-react adds to a message: of its ranking's first emojis (rank it with ``k``
    the channel's count), those whose fit reaches ``threshold``. The rank, not the fit
    alone, picks the candidates: on the tune rows, taking the best fits among the first 5,
    10 or 20 instead was less often an emoji the author used at the same number of
    reactions (README)."""
    return [r for r in ranked if r.fit >= threshold]
