"""Emoji names in the message: what a chat client's emoji autocomplete does, as one term
of the whole-catalog score.

A message that says *coffee*, *tacos*, *birthday* or *rain* names an emoji (☕ 🌮 🎂 ☔)
that tweets rarely teach the SQAM to rank first. ``NameMatch`` scores each catalog emoji
by the words of its Slack short names and CLDR name that the message contains (plural
*s* folded; emojis in the text count through their own names, which the tokenizer spells
out), each word weighted by how specific it is: ``sqrt(1 / emojis with that word)``, so
*pizza* points at 🍕 and *face* at nothing much. The whole-catalog score adds ``weight ·
match``; ``weight`` is chosen on the SQAM's tune rows by `emojibot train names` (never on
the validation side). It is a sparse (vocabulary × catalog) matrix over the word ids the
ranker already has.

The same class holds the *meaning match* (file ``name_meaning.npz``, built by `emojibot
train names`): words near an emoji's names in meaning rather than spelling, *married* → 💒,
*lakers* → 🏀, *snowing* → 🌨️ ⛄. Each cell is ``rarity(word) · (s − 0.5) / 0.5`` where
``s ≥ 0.5`` is the cosine of the word and the emoji's CLDR name (or its short names), both
embedded by all-MiniLM-L6-v2 offline; its weight is chosen on the tune rows too.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

STOP_WORDS = frozenset(
    "a an the of with and or in on at to for by from face sign symbol button mark light skin tone medium dark "
    "type emoji".split()
)


def vocab_digest(words: list[str]) -> str:
    import hashlib

    return hashlib.sha256("\n".join(words).encode("utf-8")).hexdigest()[:16]


def stem(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def name_words(emoji) -> set[str]:
    """The specific words of an emoji's short names and CLDR name."""
    out = set()
    for n in (*emoji.short_names, emoji.cldr_name):
        for w in re.split(r"[^a-z0-9]+", n.lower()):
            if len(w) > 2 and w not in STOP_WORDS and not w.isdigit():  # "flag-is": no "is"
                out.add(stem(w))
    return out


@dataclass
class NameHits:
    """The nonzero cells of a batch's name match: text rows, emoji columns, summed weights
    (each cell once)."""

    rows: np.ndarray
    cols: np.ndarray
    weights: np.ndarray
    n_texts: int
    n_emojis: int

    def dense(self) -> np.ndarray:
        out = np.zeros((self.n_texts, self.n_emojis), np.float32)
        out[self.rows, self.cols] = self.weights
        return out

    def add_to(self, s: np.ndarray, weight: float) -> None:
        """``s += weight · dense()``, in place (each cell once, so a fancy-index add is exact)."""
        s[self.rows, self.cols] += weight * self.weights

    def cells(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """(len(rows), len(cols)) booleans: whether text ``rows[i]`` names emoji ``cols[j]``."""
        out = np.zeros((len(rows), len(cols)), bool)
        if len(rows) == 0 or len(cols) == 0 or len(self.rows) == 0:
            return out
        row_at = np.full(self.n_texts, -1, np.int64)
        row_at[rows] = np.arange(len(rows))
        col_at = np.full(self.n_emojis, -1, np.int64)
        col_at[cols] = np.arange(len(cols))
        i, j = row_at[self.rows], col_at[self.cols]
        hit = (i >= 0) & (j >= 0) & (self.weights > 0)
        out[i[hit], j[hit]] = True
        return out

    def strongest(self) -> tuple[np.ndarray, np.ndarray]:
        """Per text, the emoji its names match most (the first such column) and that match;
        −1 and 0 for a text that names none."""
        cols = np.full(self.n_texts, -1, np.int64)
        best = np.zeros(self.n_texts, np.float32)
        order = np.lexsort((self.cols, -self.weights, self.rows))  # by text, strongest first
        texts, first = np.unique(self.rows[order], return_index=True)
        cols[texts] = self.cols[order[first]]
        best[texts] = self.weights[order[first]]
        return cols, best


class NameMatch:
    def __init__(self, matrix, weight: float, vocab_digest: str = ""):
        self.matrix = matrix.tocsr().astype(np.float32)  # (vocabulary, catalog)
        self.matrix.sort_indices()
        self.weight = float(weight)
        self.vocab_digest = vocab_digest  # the vocabulary whose word ids index the rows
        self._names_something = np.diff(self.matrix.indptr) > 0  # per word id

    @classmethod
    def build(cls, emojis, words: list[str], weight: float = 0.0, doc_freq: np.ndarray | None = None) -> NameMatch:
        """From the catalog's emojis (in row order) and the vocabulary's words.
        ``doc_freq``: the share of chat messages each word occurs in; a word is worth its
        ``log(1/doc_freq) / log(messages)`` (1 for a word never seen, 0.1 for *you*), so
        that everyday words (*see* → 🙈, *you* → 🤟) hardly count."""
        from scipy.sparse import csr_matrix

        owners: dict[str, list[int]] = defaultdict(list)
        for col, e in enumerate(emojis):
            for w in name_words(e):
                owners[w].append(col)
        rows, cols, vals = [], [], []
        for row, word in enumerate(words):
            if word.startswith("<"):
                continue
            for col in owners.get(stem(word), ()):
                rows.append(row)
                cols.append(col)
                rarity = 1.0 if doc_freq is None else float(doc_freq[row])
                vals.append(np.sqrt(1.0 / len(owners[stem(word)])) * rarity)
        m = csr_matrix((vals, (rows, cols)), shape=(len(words), len(emojis)), dtype=np.float32)
        return cls(m, weight, vocab_digest(words))

    def match(self, word_ids: np.ndarray) -> NameHits:
        """The summed weights of the distinct name words of each text, as the few nonzero
        (text, emoji) cells. Most words name no emoji: one vectorised lookup finds the few
        that do and their rows of the matrix are gathered and summed in NumPy (a sparse
        product over every word cost 0.4 ms per message, a Python loop over the hits
        1.4 ms per 256 messages, and SciPy's own overhead 0.3 ms for a single message)."""
        m = self.matrix
        n_words, n_emojis = m.shape
        rows, pos = np.nonzero(self._names_something[word_ids])
        pairs = np.unique(rows.astype(np.int64) * n_words + word_ids[rows, pos])  # a word said twice counts once
        text, word = pairs // n_words, pairs % n_words
        start = m.indptr[word]
        lengths = m.indptr[word + 1] - start
        cell = (
            np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths) + np.repeat(start, lengths)
        )
        key = np.repeat(text, lengths) * n_emojis + m.indices[cell]
        keys, which = np.unique(key, return_inverse=True)
        weights = np.bincount(which, weights=m.data[cell], minlength=len(keys)).astype(np.float32)
        return NameHits(keys // n_emojis, keys % n_emojis, weights, word_ids.shape[0], n_emojis)

    def scores(self, word_ids: np.ndarray) -> np.ndarray:
        """(B, catalog): the summed weights of the distinct name words in each text."""
        return self.match(word_ids).dense()

    def save(self, path: Path, **extra: np.ndarray) -> None:
        """``extra``: more arrays for the same file (what built it), which ``load`` ignores."""
        m = self.matrix
        np.savez_compressed(
            path,
            **extra,
            data=m.data,
            indices=m.indices,
            indptr=m.indptr,
            shape=np.array(m.shape),
            weight=np.array(self.weight),
            vocab_digest=np.array(self.vocab_digest),
        )

    @classmethod
    def load(cls, path: Path) -> NameMatch:
        from scipy.sparse import csr_matrix

        with np.load(path) as z:
            m = csr_matrix((z["data"], z["indices"], z["indptr"]), shape=tuple(int(x) for x in z["shape"]))
            return cls(m, float(z["weight"]), str(z["vocab_digest"]) if "vocab_digest" in z.files else "")


SLOT_POSITION = 5  # the place a strongly named emoji is given in a top 5 (models.names.give_slot)


def give_slot(s: np.ndarray, cols: np.ndarray, match: np.ndarray, threshold: float) -> None:
    """The name slot: where a text names an emoji strongly (its match at least
    ``threshold``: a rare word that few emojis have in their names, such as *snail*,
    *trumpet*, *tired*) and the ranking does not already have it in its first four, it is
    given the fifth place, just below the fourth, in place. Only the last place of a top
    5: the first four, and auto-react, which reads the top 3, are the ranking's own."""
    rows = np.nonzero((match >= threshold) & (cols >= 0))[0]
    if not len(rows):
        return
    sub = s[rows]
    fourth = -np.partition(-sub, SLOT_POSITION - 2, axis=1)[:, SLOT_POSITION - 2]
    c = cols[rows]
    below = sub[np.arange(len(rows)), c] < fourth
    s[rows[below], c[below]] = np.nextafter(fourth[below], np.float32(-np.inf))
