"""Feedback → triplets: what `emojibot retrain` learns from the reactions people add.

Input is the store's export (``Store.export_feedback``: plain rows, people as salted
hashes), so training never imports the bot. For every stored message:

- the *right answers* are the emojis people added and kept (a reaction removed later does
  not count); reactions by the message's own author are ignored (bots never reach the
  store: the bot drops their events);
- the *wrong answers* are the bot's own suggestions that nobody endorsed within
  ``negative_window_hours`` (a younger message may still get its reactions); beside them,
  every other catalog emoji is a negative of the softmax the model trains with;
- an emoji is learned only where at least ``min_people`` different people added it
  (anywhere in the feedback): one person alone cannot teach the bot an emoji;
- each person's reactions weigh at most ``person_cap`` in all, however many they add
  (one person reacting to 500 messages counts as ``person_cap`` reactions spread over
  them), and on any one emoji at most as much as everyone else's reactions with it
  together: however hard one person pushes an emoji, the others decide how much it counts.

The newest ``holdout_fraction`` of the messages with right answers are held out, never
trained on: the promotion gate's test of whether a candidate learned something.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class FeedbackSettings:
    negative_window_hours: float = 24.0
    person_cap: float = 20.0
    min_people: int = 3
    holdout_fraction: float = 0.2
    max_example_weight: float = 3.0  # many people agreeing count more, up to this
    negative_only_weight: float = 0.25  # a message nobody reacted to: weak evidence


@dataclass
class FeedbackExample:
    text: str
    positives: dict[str, float]  # emoji → weight of the people who added it
    negatives: list[str]  # suggested, never endorsed
    time: float
    weight: float = 1.0


@dataclass
class Feedback:
    train: list[FeedbackExample] = field(default_factory=list)
    holdout: list[FeedbackExample] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)


def build_feedback(
    export: dict[str, list[dict[str, Any]]],
    known: Callable[[str], bool],
    settings: FeedbackSettings | None = None,
    now: float | None = None,
) -> Feedback:
    """Triplets from an export; ``known(emoji)`` says whether the model can rank an emoji
    (reactions with custom or unknown emojis are counted and left out)."""
    s = settings or FeedbackSettings()
    now = time.time() if now is None else now
    messages = {m["key"]: m for m in export.get("messages", []) if m.get("text", "").strip()}
    stats = defaultdict(int)
    stats["messages"] = len(messages)
    # The last word of each person on each emoji of each message: added, or removed again.
    state: dict[tuple[str, str, str], tuple[int, bool]] = {}
    for r in export.get("reactions", []):
        stats["reaction_events"] += 1
        m = messages.get(r["key"])
        if m is None:
            stats["ignored_no_text"] += 1
            continue
        if m.get("author") is not None and r["user"] == m["author"]:
            stats["ignored_author"] += 1
            continue
        if not known(r["emoji"]):
            stats["ignored_unknown_emoji"] += 1
            continue
        k = (r["key"], r["user"], r["emoji"])
        order = int(r.get("order", 0))
        if k not in state or order >= state[k][0]:
            state[k] = (order, bool(r["added"]))
    kept = [(key, user, emoji) for (key, user, emoji), (_, added) in state.items() if added]
    supporters: dict[str, set[str]] = defaultdict(set)
    for _, user, emoji in kept:
        supporters[emoji].add(user)
    lonely = {e for e, users in supporters.items() if len(users) < s.min_people}
    stats["ignored_too_few_people"] = sum(1 for _, _, e in kept if e in lonely)
    kept = [k for k in kept if k[2] not in lonely]
    stats["reactions_kept"] = len(kept)
    per_person: dict[str, int] = defaultdict(int)
    for _, user, _ in kept:
        per_person[user] += 1
    stats["people"] = len(per_person)
    stats["people_capped"] = sum(1 for n in per_person.values() if n > s.person_cap)
    weight = {u: min(1.0, s.person_cap / n) for u, n in per_person.items()}
    by_person_emoji: dict[tuple[str, str], float] = defaultdict(float)
    by_emoji: dict[str, float] = defaultdict(float)
    for _, user, emoji in kept:
        by_person_emoji[user, emoji] += weight[user]
        by_emoji[emoji] += weight[user]
    share = {}  # (person, emoji) → factor keeping the person at most at everyone else's weight
    for (user, emoji), w in by_person_emoji.items():
        others = by_emoji[emoji] - w
        share[user, emoji] = min(1.0, others / w)
    stats["people_outweighing_the_rest"] = sum(1 for f in share.values() if f < 1.0)
    positives: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for key, user, emoji in kept:
        positives[key][emoji] += weight[user] * share[user, emoji]

    window = s.negative_window_hours * 3600.0
    with_answers, negative_only = [], []
    for key, m in messages.items():
        pos = dict(positives.get(key, {}))
        old_enough = now - float(m.get("time", now)) >= window
        neg = [e for e in m.get("suggested", []) if e not in pos and known(e)] if old_enough else []
        if pos:
            weight = min(sum(pos.values()), s.max_example_weight)
            with_answers.append(FeedbackExample(m["text"], pos, neg, float(m.get("time", 0.0)), weight))
        elif neg:
            negative_only.append(FeedbackExample(m["text"], {}, neg, float(m.get("time", 0.0)), s.negative_only_weight))
    with_answers.sort(key=lambda e: e.time)
    n_hold = int(round(len(with_answers) * s.holdout_fraction))
    cut = len(with_answers) - n_hold
    out = Feedback(train=with_answers[:cut] + negative_only, holdout=with_answers[cut:])
    stats.update(
        train_with_answers=cut,
        train_negative_only=len(negative_only),
        holdout=n_hold,
        negatives=sum(len(e.negatives) for e in out.train),
    )
    out.stats = dict(stats)
    return out
