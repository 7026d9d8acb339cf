"""Feedback → triplets (training.feedback): who counts, how much, and what is held out."""

from __future__ import annotations

import pytest

from training.feedback import FeedbackSettings, build_feedback

NOW = 1_000_000.0
DAY = 86_400.0


def _export(messages, reactions):
    order = iter(range(1, 10**6))
    return {
        "messages": [
            {"key": k, "text": t, "suggested": list(sug), "author": a, "time": ts} for k, t, sug, a, ts in messages
        ],
        "reactions": [
            {"key": k, "emoji": e, "added": add, "user": u, "time": NOW, "order": next(order)}
            for k, u, e, add in reactions
        ],
    }


def _known(e: str) -> bool:
    return e in {"🍕", "🎉", "🤮", "😂", "🔥"}


def _crowd(emoji: str, n: int = 3, key: str = "crowd"):
    """A message where n people add ``emoji`` (so that it has enough supporters)."""
    return [(key, "hello crowd", (), "A", NOW - 2 * DAY)], [(key, f"C{i}", emoji, True) for i in range(n)]


def test_right_answers_are_what_people_added_and_kept_never_the_authors_own():
    m, r = _crowd("🍕")
    m += [("k1", "pizza time", (), "A", NOW - 2 * DAY)]
    r += [
        ("k1", "A", "🎉", True),  # the author: ignored
        ("k1", "B", "🍕", True),
        ("k1", "C0", "🔥", True),
        ("k1", "C0", "🔥", False),  # removed again: does not count
    ]
    fb = build_feedback(_export(m, r), _known, FeedbackSettings(holdout_fraction=0.0, min_people=1), now=NOW)
    ex = {e.text: e for e in fb.train}
    assert set(ex["pizza time"].positives) == {"🍕"}
    assert fb.stats["ignored_author"] == 1


def test_unendorsed_suggestions_are_wrong_answers_once_the_window_has_passed():
    m, r = _crowd("🍕")
    m += [
        ("old", "an old one", ("😂", "🍕"), "A", NOW - 2 * DAY),
        ("new", "a new one", ("😂",), "A", NOW - 60),
    ]
    r += [("old", "B", "🍕", True)]
    s = FeedbackSettings(negative_window_hours=24, holdout_fraction=0.0)
    ex = {e.text: e for e in build_feedback(_export(m, r), _known, s, now=NOW).train}
    assert ex["an old one"].negatives == ["😂"]  # 🍕 was endorsed
    assert "a new one" not in ex  # too young to tell, and nobody reacted yet
    assert ex["hello crowd"].negatives == []


def test_a_message_nobody_reacted_to_teaches_only_what_not_to_suggest_weakly():
    m = [("k", "quiet message", ("😂",), "A", NOW - 3 * DAY)]
    fb = build_feedback(_export(m, []), _known, FeedbackSettings(holdout_fraction=0.0), now=NOW)
    (e,) = fb.train
    assert e.positives == {} and e.negatives == ["😂"] and e.weight == FeedbackSettings().negative_only_weight


def test_one_person_weighs_at_most_the_cap_and_never_more_than_everyone_else():
    m = [(f"k{i}", f"message {i}", (), "A", NOW - DAY) for i in range(100)]
    r = [(f"k{i}", "TROLL", "🤮", True) for i in range(100)]
    r += [("k0", "B", "🤮", True), ("k1", "C", "🤮", True)]  # two others, once each
    s = FeedbackSettings(person_cap=20, min_people=3, holdout_fraction=0.0)
    fb = build_feedback(_export(m, r), _known, s, now=NOW)
    total = sum(e.positives.get("🤮", 0.0) for e in fb.train)
    # the troll: capped at 20 reactions, then at the others' 2 → 2; plus the others' 2
    assert total == pytest.approx(4.0)
    assert fb.stats["people_capped"] == 1 and fb.stats["people_outweighing_the_rest"] == 1


def test_an_emoji_only_one_or_two_people_use_is_not_learned():
    m = [(f"k{i}", f"message {i}", (), "A", NOW - DAY) for i in range(10)]
    r = [(f"k{i}", "B", "🎉", True) for i in range(10)] + [("k0", "C", "🎉", True)]
    fb = build_feedback(_export(m, r), _known, FeedbackSettings(min_people=3), now=NOW)
    assert fb.train == [] and fb.holdout == [] and fb.stats["ignored_too_few_people"] == 11


def test_the_newest_fifth_is_held_out_and_never_trained_on():
    m = [(f"k{i}", f"message {i}", (), "A", NOW - DAY + i) for i in range(50)]
    r = [(f"k{i}", u, "🍕", True) for i in range(50) for u in ("B", "C", "D")]
    fb = build_feedback(_export(m, r), _known, FeedbackSettings(), now=NOW)
    assert len(fb.holdout) == 10 and len(fb.train) == 40
    assert min(e.time for e in fb.holdout) > max(e.time for e in fb.train)
    assert not {e.text for e in fb.holdout} & {e.text for e in fb.train}


def test_unknown_and_custom_emojis_are_left_out():
    m, r = _crowd("🍕")
    r += [("crowd", "B", "partyparrot", True)]
    fb = build_feedback(_export(m, r), _known, FeedbackSettings(holdout_fraction=0.0), now=NOW)
    assert fb.stats["ignored_unknown_emoji"] == 1 and set(fb.train[0].positives) == {"🍕"}
