"""Complaints: a message that reads negative. For these the bot holds back the emojis of
delight: the adoring, kissing and grinning faces, the love hearts other than ❤️, party.

Tweets teach the ranking that 😍 and 💕 go with almost anything, so "the deploy failed
again, rolling back" got 😂 🙄 😍 ❤️ 😭, "traffic was terrible this morning" 😂 💯 ❤️ 😍 💕
and "I hate mondays" 😂 🙄 😍 😭 ❤️. A colleague who answered a
complaint with 😍 would be read as mocking it. So when a message reads negative by VADER
(`vaderSentiment`, the lexicon the heads already use: compound ≤ :data:`THRESHOLD`), the
emojis of :data:`DELIGHT` move below every other emoji of its ranking
(:func:`models.grave.hold_back`). What is left is what the ranking puts next: 😭 😩 🙄 🤔
and the like.

Left where they are, on purpose: ❤️ (sympathy for a sad message as much as love), 😂
(the 2016 tweets use it 2.4 times as often with a negative message as with any: it is how
people laugh at their own bad luck) and every emoji of a topic (🔥 on a fire, ✈️ on a
cancelled flight). The set is fixed by meaning, not learned. The threshold is the loosest
of −0.05 (VADER's own line for "negative"), −0.2, −0.3, −0.4 and −0.5 that costs the
shipped model's tune rows and TweetEval's train tweets (never reported) at most 0.002 of
top-5 and of MRR, the rule of the name slot. Looser, the TweetEval tweets lose 0.0023 to
0.0052 of top-5: VADER reads much of their praise as negative ("nothing better than",
"you're killing me", "no filter needed"), and their writers put 😍 on it. So a mild
complaint ("lakers lost again tonight", −0.32) keeps the ranking's own answer. Measured on
every collection we have in the README, "Complaints".

VADER costs 38 µs a tweet here, a third of what ranking one costs, so it runs only on
messages that hold a word it reads as negative, a negation (a positive word under *not*
turns negative), a word of a phrase it scores negative (*kiss of death*) or an emoji: the
rest cannot score below 0.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from functools import cache

import numpy as np

THRESHOLD = -0.4  # VADER compound at or below which a message reads negative

# What a negative message never gets: the grinning and smiling faces (😀 😃 😄 😁 😆 😊;
# not 😅, 🙂 or 🙃, which fit bad luck and irony), the adoring and kissing ones (CLDR
# face-affection but 🤩 and 🥲), the smiling cat with heart eyes, the love hearts but ❤️ and
# 💔, the kiss mark, sparkles and party.
DELIGHT = ("😀 😃 😄 😁 😆 😊 ☺️ 🥰 😍 😘 😗 😚 😙 🥳 😻 💘 💝 💖 💗 💓 💞 💕 💋 ✨ 🎉 🎊").split()


@cache
def _vader():
    """The analyzer and the words that can make a message negative (loaded on first use)."""
    import vaderSentiment.vaderSentiment as vader

    analyzer = vader.SentimentIntensityAnalyzer()
    triggers = {w for w, v in analyzer.lexicon.items() if v < 0}
    triggers |= {w.lower() for w in vader.NEGATE} | {"least"}
    # a phrase VADER scores negative ("yeah right") is scored at a word of its lexicon
    triggers |= {w for p, v in vader.SPECIAL_CASES.items() if v < 0 for w in p.split() if w in analyzer.lexicon}
    return analyzer, frozenset(triggers), frozenset(analyzer.emojis)


def _may_be_negative(text: str, triggers: frozenset[str], emojis: frozenset[str]) -> bool:
    """Whether VADER could score ``text`` below 0: it holds a negative word, a negation, a
    word of a negative idiom or an emoji (VADER reads an emoji by its description)."""
    for token in text.lower().split():
        if token in triggers or token.strip(string.punctuation) in triggers or "n't" in token:
            return True
    return any(c in emojis for c in text if ord(c) > 127)


def is_complaint(text: str) -> bool:
    """Whether ``text`` reads negative (VADER compound ≤ :data:`THRESHOLD`)."""
    analyzer, triggers, emojis = _vader()
    if not _may_be_negative(text, triggers, emojis):
        return False
    return analyzer.polarity_scores(text)["compound"] <= THRESHOLD


def complaint_rows(texts: Sequence[str]) -> np.ndarray:
    """Indices of the texts among ``texts`` that read negative."""
    return np.asarray([i for i, t in enumerate(texts) if is_complaint(t)], dtype=np.int64)
