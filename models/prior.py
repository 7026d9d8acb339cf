"""The popularity mix: how the whole-catalog ranking hedges when a message says little.

The SQAM, the names and the catalog head learn from the whole-catalog tweets, where the
rarer emojis are weighed up (the head's class weights) so the ranking finds the specific
emoji. On messages of another kind, where people mostly answer with the popular emojis
(TweetEval's tweets: the 20 most used; the issue's YouTube comments: the five most frequent
emojis are the gold of 45% of them), that ranking lost top-5 to answering the five most
popular emojis to everything.

So the whole-catalog score becomes a mixture of two answers, as probabilities:

    p(emoji | text) = (1 − weight) · softmax(score / temperature) + weight · popularity(emoji)

where ``score`` is the SQAM + names + catalog head sum and ``popularity`` how often people
used each emoji in the training tweets (add-½ smoothed over the catalog). Where the score
is sure (one emoji far ahead), its softmax dominates and the ranking is unchanged; where it
is spread thin over many emojis, the popular ones rise into the top 5. The ranker returns
``p`` as the score.

Since 2026-11-29 the weight may yield to a sure answer (``sureness``, 0 or 1, chosen with the
weight by `train catalog-head`'s rule): each message's weight is ``weight · (1 − the softmax's
largest probability) ** sureness``. A message whose own answer is sure ("I love you": ❤️ at
0.9) then fills the rest of its top 5 with its own next answers (💗 💕 💘 💖) rather than
with the most popular emojis (😂), and one whose answer is spread thin takes about the
whole weight.

``temperature`` is fitted by likelihood on the SQAM's tune rows (temperature scaling: the
score is a sum of terms and was never a calibrated logit); ``weight`` is chosen by `emojibot
train catalog-head`: the largest that costs the tune rows nothing that matters (top-5
and MRR at most 0.002 lower, macro-recall@5, which moves more, at most 0.007): 0.25 for
the shipped model (with the meaning match; 0.2 before it), at which its top-5 on
TweetEval's train tweets ranked against the whole catalog is 0.529, past answering the
five most popular emojis (0.508). A larger weight scores better still there, but it costs
macro-recall@5 on the whole-catalog tweets and fills what a user sees with 😂 😍 ❤️
(README). Neither is chosen on a split we report.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

SMOOTHING = 0.5  # pseudo-count of every catalog emoji in the popularity


class PopularityMix:
    """Per-emoji use counts, a temperature, a weight and how the weight yields to a sure
    answer (``sureness``); :meth:`bind` maps the counts to a catalog's rows before
    :meth:`probabilities`."""

    def __init__(self, emojis: Sequence[str], counts, temperature: float, weight: float, sureness: float = 0.0):
        self.emojis = list(emojis)
        self.counts = np.asarray(counts, np.float64)
        self.temperature = float(temperature)
        self.weight = float(weight)
        self.sureness = float(sureness)
        self.popularity: np.ndarray | None = None  # (catalog,) probabilities (bind)

    def bind(self, positions: dict[str, int], n_catalog: int) -> PopularityMix:
        """The popularity over a catalog's rows (an emoji outside it is dropped)."""
        p = np.full(n_catalog, SMOOTHING)
        for e, n in zip(self.emojis, self.counts, strict=True):
            if e in positions:
                p[positions[e]] += n
        self.popularity = (p / p.sum()).astype(np.float32)
        return self

    def probabilities(self, s: np.ndarray, weight: float | None = None, sureness: float | None = None) -> np.ndarray:
        """(B, catalog) mixture probabilities for whole-catalog scores ``s``: the mixed
        score (a ``log`` would rank the same and cost a fifth more)."""
        return self.mixed(s, weight, sureness)[0]

    def mixed(
        self, s: np.ndarray, weight: float | None = None, sureness: float | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(the mixture's probabilities (B, catalog), each row's weight of popularity (B, 1)).
        The weight is ``weight · (1 − the softmax's largest probability) ** sureness``: with
        ``sureness`` 0 the same for every message; above 0, a message whose own answer is
        sure ("I love you": ❤️ at 0.9) takes less popularity into the rest of its top 5
        than one whose answer is spread thin."""
        assert self.popularity is not None, "bind the mix to a catalog first"
        w = self.weight if weight is None else weight
        g = self.sureness if sureness is None else sureness
        z = np.asarray(s, np.float32) / np.float32(self.temperature)
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        total = z.sum(axis=1, keepdims=True)
        if g:  # the largest probability is exp(0) / total: the row's maximum was subtracted
            rows = np.float32(w) * (1.0 - 1.0 / total) ** np.float32(g)
        else:
            rows = np.full((len(z), 1), w, np.float32)
        z *= (1.0 - rows) / total
        z += rows * self.popularity
        return z, rows.astype(np.float32)

    def given(self, cols: np.ndarray | None = None, rows: np.ndarray | None = None) -> np.ndarray:
        """The mixture's second half, ``weight · popularity``, of the catalog rows ``cols``
        (all of them by default): what an emoji's probability owes to how often people use
        it, whatever the message; ``rows``: each message's weight, as :meth:`mixed` gives
        it (the mix's weight by default)."""
        assert self.popularity is not None, "bind the mix to a catalog first"
        p = self.popularity if cols is None else self.popularity[cols]
        return (np.float32(self.weight) if rows is None else rows) * p

    def save(self, path: Path) -> None:
        np.savez(
            path,
            emojis=np.array(self.emojis),
            counts=self.counts.astype(np.float32),
            temperature=np.array(self.temperature),
            weight=np.array(self.weight),
            sureness=np.array(self.sureness),
        )

    @classmethod
    def load(cls, path: Path) -> PopularityMix:
        with np.load(path) as z:
            sureness = float(z["sureness"]) if "sureness" in z else 0.0  # written before it: 0
            return cls(
                [str(e) for e in z["emojis"]], z["counts"], float(z["temperature"]), float(z["weight"]), sureness
            )
