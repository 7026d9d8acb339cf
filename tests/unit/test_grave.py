"""Grave messages (models.grave): the bot does not laugh, flirt or party at a death, a grave
illness or a disaster, nor at the sympathy sent for one, with the shipped model and its real
ranking."""

from __future__ import annotations

import numpy as np
import pytest

from models.grave import HELD_BACK, hold_back, is_grave

GRAVE = [
    "my grandma passed away last night",
    "RIP legend",
    "#RIP Prince",
    "sad news: our colleague Tom died this morning",
    "he has cancer",
    "earthquake killed hundreds",
    "the funeral is on friday",
    "thoughts and prayers for the victims of the mass shooting",
    "Prince's death hit me hard",
    "my dog died today",
    # a person's or a pet's own death, told plainly
    "my cat died",
    "our grandpa passed last night",
    "my best friend died",
    "his dog just died",
    # a person or a pet taken to hospital
    "my mom is in the hospital",
    "my dad was rushed to the hospital last night",
    "grandma got hospitalized",
    # the loss of a job
    "got laid off today",
    "I lost my job",
    "my dad lost his job",
    "I was let go this morning",
    "got fired today",
    "layoffs announced at work today",
    "half the team was made redundant",
    # sympathy for someone ill or grieving
    "get well soon!",
    "hope you're feeling better",
    "sorry to hear that",
    "so sorry for your loss",
    "hang in there",
    "wishing you a speedy recovery",
    "sending hugs",
]
NOT_GRAVE = [
    "love these girls to death",  # hyperbole: a bare "death" or "died" is no death
    "I died, this is too good",
    "we killed it today",
    "death by meetings today",
    "that parking lot is a death trap",
    "lol my plant died today",  # a message that laughs is a joke
    "RIP my diet 😂",
    "they rip you off at that airport",
    "tonight at Rip City",
    "Suicide Squad at the cinema",
    "the server is down again, everything is on fire",
    "happy birthday Sam, have a great one!",
    "I feel better now",  # glad, not a wish
    "sending love from vegas",
    "thinking of you",  # as often romantic
    "sorry I'm late",
    "well done everyone",
    "get well soon lol",
    "my phone died",  # a thing's "death" is a complaint
    "my laptop died, lost half a day of work",
    "my brother passed the exam",
    "my daughter passed!",  # glad: passed her test
    "my wife is in the hospital having our baby!",  # a birth: glad news from the same ward
    "I work at the hospital",
    "my sister is in the hospital lol",
    "we're all fired up for the game",  # not a job lost
    "let go of the past",
    "lay off the sugar",
    "I lost my keys again",
    "I got fired lol",
]


@pytest.mark.parametrize("text", GRAVE)
def test_a_death_a_grave_illness_or_a_disaster_is_grave(text):
    assert is_grave(text)


@pytest.mark.parametrize("text", NOT_GRAVE)
def test_hyperbole_jokes_and_everyday_messages_are_not(text):
    assert not is_grave(text)


def test_holding_back_moves_columns_below_every_other_and_keeps_their_order():
    s = np.array([[0.5, 0.1, 0.3, 0.05], [0.2, 0.4, 0.3, 0.1]])
    hold_back(s, np.array([0]), np.array([0, 2]))
    assert list(np.argsort(-s[0])) == [1, 3, 0, 2]  # the held ones last, 0.5 still before 0.3
    assert s[1].tolist() == [0.2, 0.4, 0.3, 0.1]  # other rows untouched


def test_holding_back_leaves_the_cells_it_is_told_to_keep():
    s = np.array([[0.5, 0.1, 0.3, 0.05], [0.2, 0.4, 0.3, 0.1]])
    hold_back(s, np.array([0, 1]), np.array([0, 2]), keep=np.array([[True, False], [False, False]]))
    assert s[0, 0] == 0.5 and list(np.argsort(-s[0])) == [0, 1, 3, 2]  # column 0 kept, 2 held
    assert list(np.argsort(-s[1])) == [1, 3, 2, 0]  # both held in row 1


def test_the_shipped_ranking_holds_back_laughing_and_partying_emojis_for_grave_messages():
    from models.ranker import TextRanker

    r = TextRanker()
    held = set(HELD_BACK)
    before = r.score_and_rank(GRAVE, 5, grave=False)[1]
    after = r.score_and_rank(GRAVE, 5)[1]
    # without the guard, the tweets' habits show (😂 first for a colleague's death)
    assert sum(1 for row in before for x in row if x.emoji in held) >= len(GRAVE)
    for text, row in zip(GRAVE, after, strict=True):
        assert not {x.emoji for x in row} & held, (text, [x.emoji for x in row])
    # what is left is the ranking's own next best: a grief emoji among the top 5 of most
    grief = set("😢 😭 💔 🙏 😥 😞 😔 🥀 🕊️".split())
    assert sum(1 for row in after if {x.emoji for x in row} & grief) >= len(GRAVE) // 2
    # everything else ranks as before: same emojis, same order
    plain = ["the server is down again, everything is on fire", "love these girls to death"]
    assert [[x.emoji for x in row] for row in r.rank(plain)] == [
        [x.emoji for x in row] for row in r.score_and_rank(plain, 5, grave=False)[1]
    ]


def test_among_given_candidates_nothing_is_held_back():
    """Candidates are the caller's choice, with meanings of their own (the airline
    benchmark's 😈 is a neutral tweet): the guard is for the bot's own whole-catalog choice."""
    from models.ranker import TextRanker

    r = TextRanker()
    text = ["sad news: our colleague Tom died this morning"]
    cands = ["😂", "😢", "🎉", "❤️"]
    assert r.scores(text, cands).tolist() == r.scores(text, cands, grave=False).tolist()


def test_the_quick_look_for_key_words_changes_no_answer(data_dir):
    """``is_grave`` looks for a few substrings before the regular expression: on every
    tweet we have, it answers as the regular expressions alone do."""
    import csv

    from models import grave

    d = data_dir / "tweeteval_emoji"
    texts = (d / "val_text.txt").read_text(encoding="utf-8").splitlines()
    with open(data_dir / "twemoji_tweets" / "tweets.csv", encoding="utf-8") as f:
        texts += [r["text"] for r in csv.DictReader(f)]
    texts += GRAVE + NOT_GRAVE
    full = [grave._names_grave(t) for t in texts]  # the regular expressions alone
    assert [is_grave(t) for t in texts] == full
    assert sum(full) > 50  # the collections hold real grave tweets
    # the ranker's batch look: the same messages, batch by batch, with messages that hold
    # a newline or lower-case to more characters (İ) between them
    texts += ["RIP\nlegend", "İİİ rip", "x", "", "the funeral\n"]
    for b in range(0, len(texts), 256):
        chunk = texts[b : b + 256]
        assert grave.grave_rows(chunk).tolist() == [i for i, t in enumerate(chunk) if is_grave(t)]
    assert grave.grave_rows([]).tolist() == []
