"""Complaints: a message that reads negative. For these the bot holds back the emojis of
delight: the grinning, smiling, adoring and kissing faces, the love hearts other than ❤️,
party.

Tweets teach the ranking that 😍 and 💕 go with almost anything, so "the deploy failed
again, rolling back" got 😂 🙄 😍 ❤️ 😭, "traffic was terrible this morning" 😂 💯 ❤️ 😍 💕
and "lakers lost again tonight" 😍 first. A colleague who answered a complaint with 😍
would be read as mocking it. So when a message's tone (:class:`Tone`: the VADER sentiment
lexicon over its words) is at or below :data:`THRESHOLD`, or where the complaint model
(:class:`ComplaintModel`, learned from the airline tweets' sentiment) reads it as negative,
the emojis of :data:`DELIGHT` move below every other emoji of its ranking
(:func:`models.grave.hold_back`). What is left is what the ranking puts next: 😭 😩 🙄 🤔
and the like.

Left where they are, on purpose: ❤️ (sympathy for a sad message as much as love), 😂 (the
2016 tweets use it 2.4 times as often with a negative message as with any: it is how
people laugh at their own bad luck) and every emoji of a topic (🔥 on a fire, ✈️ on a
cancelled flight), including an emoji of delight that the message names (the name match,
:mod:`models.names`) where the ranking puts it above the plainer emojis the message also
names (:func:`named_topic`): ☀️ stays for "this sunny weather is killing me", 🌞 ☀️ for
"the sun is so hot, hate summer", 🎉 for "the party got cancelled", but 😻 goes for "my
cat is sick", where *cat* names 🐱 too. The set is fixed by meaning, not
learned. The threshold is the loosest of −0.05 (VADER's own line for "negative"), −0.2,
−0.3, −0.4 and −0.5 that costs the shipped model's tune rows and TweetEval's train tweets
(never reported) at most 0.002 of top-5 and of MRR, the rule of the name slot, on the
model of 2026-11-28. Looser, the TweetEval tweets lost 0.0037 to 0.0051 of top-5: the
lexicon reads much of their praise as negative ("nothing better than", "you're killing
me", "no filter needed"), and their writers put 😍 on it. Measured again on the model of
2026-11-29, −0.3 costs TweetEval's choosing tweets 0.0038 of top-5, over the rule; it
stays (`train complaint` reports the measurement each time it runs; README, "Complaints").
A word the lexicon lacks reads as its other spelling (:data:`SPELLINGS`) or as its stem
(:func:`stems`: *crashed* as *crash*). Measured on every collection we have in the README,
"Complaints".
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

THRESHOLD = -0.3  # tone (Tone.compound) at or below which a message reads negative
NEGATION = -0.74  # VADER's factor for a word after a negation (its N_SCALAR)
BEFORE_BUT, AFTER_BUT = 0.5, 1.5  # VADER's weights of the words before and after a *but*

# What a negative message never gets, unless it names it: the grinning and smiling faces
# (😀 😃 😄 😁 😆 😊, and the smiling 😎, 🌞 and ☀️, which read as smug or sunny on a
# cancelled flight, a lost game or a sick day; not 😅, 🙂 or 🙃, which fit bad luck and
# irony), the adoring and kissing ones (CLDR face-affection but 🤩 and 🥲), the smiling cat
# with heart eyes, the love hearts but ❤️ and 💔, the kiss mark, sparkles and party.
DELIGHT = ("😀 😃 😄 😁 😆 😊 ☺️ 😎 🌞 ☀️ 🥰 😍 😘 😗 😚 😙 🥳 😻 💘 💝 💖 💗 💓 💞 💕 💋 ✨ 🎉 🎊").split()

# The other spelling of words VADER's lexicon has in one spelling only (American or British;
# of 32 everyday pairs looked up, these five): "my flight got canceled" reads as "cancelled".
SPELLINGS = {"canceled": "cancelled", "canceling": "cancelling", "favourite": "favorite", "fulfil": "fulfill",
             "gray": "grey"}  # fmt: skip


def stems(word: str) -> list[str]:
    """The words ``word`` may be an inflection of, most likely first: the lexicon lists
    *crash*, *delay*, *leak* but not *crashed*, *delays*, *leaking*, so "the server crashed
    again" read as neutral and kept 😍 first. Plural and third person (*-s*; *-es* after
    s, x, z, ch, sh; *-ies* → *-y*), past (*-ed* → the word with or without its *e*, *-ied*
    → *-y*) and *-ing* (with or without an *e*), each leaving at least four letters, or
    three where the last consonant was doubled (*robbed* → *rob*, *banning* → *ban*): a
    shorter cut mostly finds another word (*wines* → *win*, *faded* → *fad*)."""
    if len(word) < 5 or not word.endswith(("s", "ed", "ing")) or not word.isalpha():
        return []
    cuts: list[str] = []
    doubled: list[str] = []
    if word.endswith(("ies", "ied")):
        cuts.append(word[:-3] + "y")
    if word.endswith("es") and word[:-2].endswith(("s", "x", "z", "ch", "sh")):
        cuts.append(word[:-2])
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        cuts.append(word[:-1])
    for end in ("ed", "ing"):
        if word.endswith(end):
            root = word[: -len(end)]
            cuts += [root + "e", root] if end == "ed" else [root, root + "e"]
            if root[-1] == root[-2] and root[-1] not in "aeiouls":  # robb-ed, bann-ing; not kill-ed
                doubled.append(root[:-1])
    return [w for w in dict.fromkeys(cuts) if len(w) >= 4] + [w for w in doubled if len(w) >= 3]


def named_topic(named, s: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """(len(rows), len(cols)) booleans: the emojis of delight ``cols`` that stay where they
    rank in the negative texts ``rows``, because the text names them (``named``, the batch's
    :class:`models.names.NameHits`) and the scores ``s`` rank them above every emoji outside
    ``cols`` that the text also names. A name shared with a plainer emoji is that emoji's
    topic, and the delight is extra: *cat* names 🐱 and 😻 (the cat with heart eyes), *heart*
    names 💔 and every love heart, *eyes* 👀 and 😍 ("heart_eyes"), so "my cat died" kept 😻
    and auto-react added it, and "my heart is broken, worst day ever" ranked 😍 second. Where
    the delight emoji is the one the ranking puts first of those named (☀️ above 🌤️ "mostly
    sunny" for "this sunny weather is killing me"; 🎉, the only emoji *party* names), it is
    the message's topic and stays."""
    keep = named.cells(rows, cols)
    if not keep.any():
        return keep
    row_at = np.full(named.n_texts, -1, np.int64)
    row_at[rows] = np.arange(len(rows))
    outside = np.ones(named.n_emojis, bool)
    outside[cols] = False
    i = row_at[named.rows]
    hit = (i >= 0) & outside[named.cols] & (named.weights > 0)
    plainer = np.full(len(rows), -np.inf, np.float64)  # per text, the best-ranked named emoji outside cols
    np.maximum.at(plainer, i[hit], s[named.rows[hit], named.cols[hit]])
    return keep & (s[np.ix_(rows, cols)] > plainer[:, None])


def valence_of(word: str, lexicon: dict[str, float]) -> float:
    """A word's valence in VADER's ``lexicon``: its own, else its other spelling's
    (:data:`SPELLINGS`), else that of the first of its :func:`stems` the lexicon has; 0 for
    a word it does not know."""
    if word in lexicon:
        return lexicon[word]
    if SPELLINGS.get(word) in lexicon:
        return lexicon[SPELLINGS[word]]
    return next((lexicon[w] for w in stems(word) if w in lexicon), 0.0)


class Tone:
    """How negative each message reads: the VADER lexicon's valence of each of its words (of
    the lexicon's 7,506 entries, the 3,212 in the shipped vocabulary; most of the rest are
    emoticons, which the tokenizer reads as ``<sad>`` and the like, and rare words; and
    323 more of the vocabulary's words through their stems, :func:`valence_of`), a
    word's valence times −0.74 for each negation among the three words before it (*not
    good*; the tokenizer's *n't* counts), and, as VADER weighs a *but*, the words before a
    message's first *but* at half and those after it at 1.5 (*I love my job but today was
    terrible* reads negative, *it was terrible but I loved it* glad); summed and squashed
    to −1…1 as VADER's compound is (``s / √(s² + 15)``). VADER's own code (with its
    boosters, capitals and punctuation) costs 50 µs a message in Python, a third of what
    ranking one costs; this reads the word ids the ranking already has, about 1 µs a
    message, and its tone correlates 0.96 with VADER's compound on TweetEval's tweets."""

    def __init__(self, words: Sequence[str]):
        import vaderSentiment.vaderSentiment as vader

        lexicon = vader.SentimentIntensityAnalyzer().lexicon
        negations = {w.lower() for w in vader.NEGATE} | {"n't"}
        self.valence = np.asarray([valence_of(w, lexicon) for w in words], np.float32)
        self.negation = np.asarray([w in negations for w in words], bool)
        self.valence[self.negation] = 0.0
        self.valence[:2] = 0.0  # padding and unknown words
        self.negation[:2] = False
        self.but = words.index("but") if "but" in words else -1

    def compound(self, word_ids: np.ndarray) -> np.ndarray:
        """(B,) tone of each row of (B, T) word ids, −1 (negative) to 1."""
        v = self.valence[word_ids]
        neg = self.negation[word_ids]
        for k in (1, 2, 3):  # a negation k words before
            v[:, k:] *= np.where(neg[:, :-k], np.float32(NEGATION), np.float32(1.0))
        is_but = word_ids == self.but
        rows = np.flatnonzero(is_but.any(axis=1))
        if len(rows):  # the first *but* of a message: what follows it is what it means
            at = is_but[rows].argmax(axis=1)[:, None]
            pos = np.arange(word_ids.shape[1])
            v[rows] *= np.where(pos < at, np.float32(BEFORE_BUT), np.where(pos > at, np.float32(AFTER_BUT), 1.0))
        s = v.sum(axis=1)
        return s / np.sqrt(s * s + 15.0)

    def rows(self, word_ids: np.ndarray, threshold: float = THRESHOLD) -> np.ndarray:
        """Indices of the rows that read negative (compound ≤ ``threshold``)."""
        return np.flatnonzero(self.compound(word_ids) <= threshold)


class ComplaintModel:
    """The learned half of what reads as a complaint: a logistic regression over the SQAM
    question tower's inputs (``models.ranker.NumpyQuestionEncoder.inputs``, which the
    ranking computes anyway), trained by `emojibot train complaint` on the airline tweets'
    sentiment labels, negative against the rest. The lexicon misses the complaints whose
    words it does not score: "our server is down again and the pager won't stop" (*won't
    stop* reads glad), "the wifi is not working", "my flight is delayed 3 hours". A message
    is a complaint where the lexicon's tone is at or below ``threshold`` (:data:`THRESHOLD`),
    or where this model's probability of a negative message reaches ``cutoff``, which the
    threshold's rule chooses against the lexicon alone (`training.complaint`).
    ``inputs_digest`` names the SQAM inputs it
    was fitted on (``models.sentence.inputs_digest``): after a new `train sqam` it is stale
    and the ranking ignores it."""

    def __init__(self, weights: np.ndarray, bias: float, cutoff: float, threshold: float, inputs_digest: str):
        self.weights = np.asarray(weights, np.float32)
        self.bias = float(bias)
        self.cutoff = float(cutoff)  # the probability from which a message reads as a complaint (> 1: never)
        self.threshold = float(threshold)  # the lexicon's threshold the cutoff was chosen with
        self.inputs_digest = inputs_digest

    def probability(self, x: np.ndarray) -> np.ndarray:
        """(B,) the probability that each row of the tower's inputs ``x`` is a negative message."""
        z = np.asarray(x, np.float32) @ self.weights + np.float32(self.bias)
        return 1.0 / (1.0 + np.exp(-np.clip(z, -30.0, 30.0)))

    def flags(self, x: np.ndarray) -> np.ndarray:
        """(B,) whether each row reads as a complaint by the model."""
        return self.probability(x) >= self.cutoff

    def save(self, path: Path) -> None:
        np.savez(
            path,
            weights=self.weights,
            bias=np.float64(self.bias),
            cutoff=np.float64(self.cutoff),
            threshold=np.float64(self.threshold),
            inputs_digest=np.array(self.inputs_digest),
        )

    @classmethod
    def load(cls, path: Path) -> ComplaintModel:
        with np.load(path) as z:
            return cls(
                z["weights"], float(z["bias"]), float(z["cutoff"]), float(z["threshold"]), str(z["inputs_digest"])
            )
