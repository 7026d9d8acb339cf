"""Complaints (models.complaint): the bot does not answer a message that reads negative with
😍, 😘, 😊 or 🎉, with the shipped model and its real ranking."""

from __future__ import annotations

import pytest

from models.complaint import DELIGHT, is_complaint

COMPLAINTS = [
    "the deploy failed again, rolling back",
    "traffic was terrible this morning",
    "I hate mondays",
    "ugh, my train is late again",
    "my flight got cancelled, stuck at the airport",
    "I'm not happy with this at all",  # a positive word under a negation
    "not a great start to the week",
    "so sad 😢",
]
NOT_COMPLAINTS = [
    "happy birthday Sam, have a great one!",
    "pizza party in the kitchen at noon",
    "the build is green, shipping it",
    "meeting moved to 3pm, sorry for the late notice",  # mildly negative words only
    "lakers lost again tonight",  # a mild complaint (VADER −0.32) keeps the ranking's answer
    "the server is down again, everything is on fire",  # −0.34
    "I love this song so much it hurts",
    "good morning team, the coffee machine is fixed",
]


@pytest.mark.parametrize("text", COMPLAINTS)
def test_a_message_that_reads_negative_is_a_complaint(text):
    assert is_complaint(text)


@pytest.mark.parametrize("text", NOT_COMPLAINTS)
def test_glad_neutral_and_mildly_negative_messages_are_not(text):
    assert not is_complaint(text)


def test_the_shipped_ranking_holds_back_delight_for_complaints():
    from models.ranker import TextRanker

    r = TextRanker()
    held = set(DELIGHT)
    before = r.score_and_rank(COMPLAINTS, 5, complaint=False)[1]
    after = r.score_and_rank(COMPLAINTS, 5)[1]
    # without the guard, the tweets' habits show (😍 first for a lost game)
    assert sum(1 for row in before for x in row if x.emoji in held) >= len(COMPLAINTS) // 2
    for text, row in zip(COMPLAINTS, after, strict=True):
        assert not {x.emoji for x in row} & held, (text, [x.emoji for x in row])
    # ❤️ and 😂 are not held back: sympathy, and laughing at one's own bad luck
    assert any(x.emoji in ("❤️", "😂") for row in after for x in row)
    # everything else ranks as before: same emojis, same order
    assert [[x.emoji for x in row] for row in r.rank(NOT_COMPLAINTS)] == [
        [x.emoji for x in row] for row in r.score_and_rank(NOT_COMPLAINTS, 5, complaint=False)[1]
    ]


def test_among_given_candidates_nothing_is_held_back():
    """The airline benchmark's 🎉 stands for a glad tweet among three: given candidates
    are the caller's choice, and the guard is for the bot's own whole-catalog choice."""
    from models.ranker import TextRanker

    r = TextRanker()
    text = ["@united lost my bag again, worst airline ever"]
    cands = ["🎉", "😈", "😡"]
    assert r.scores(text, cands).tolist() == r.scores(text, cands, complaint=False).tolist()


def test_the_quick_look_for_negative_words_changes_no_answer(data_dir):
    """``is_complaint`` runs VADER only on messages with a word that could make them
    negative: on every tweet we have, it answers as VADER alone does."""
    import csv

    from models import complaint

    d = data_dir / "tweeteval_emoji"
    texts = (d / "val_text.txt").read_text(encoding="utf-8").splitlines()
    with open(data_dir / "twemoji_tweets" / "tweets.csv", encoding="utf-8") as f:
        texts += [r["text"] for r in csv.DictReader(f)]
    with open(data_dir / "airline_sentiment" / "tweets_train.csv", encoding="utf-8") as f:
        texts += [r["text"] for r in csv.DictReader(f)]
    texts += COMPLAINTS + NOT_COMPLAINTS
    analyzer, triggers, emojis = complaint._vader()
    full = [analyzer.polarity_scores(t)["compound"] <= complaint.THRESHOLD for t in texts]
    assert [is_complaint(t) for t in texts] == full
    assert sum(full) > 1000  # the collections hold real complaints
    # and the look lets through only a share of them to VADER
    assert sum(complaint._may_be_negative(t, triggers, emojis) for t in texts) < len(texts) / 2
