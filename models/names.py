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

A second (vocabulary × name) matrix says which emojis of an opposite pair a message names
*wholly*: every word of one of its names (*thumbs up*, or 👍, which the tokenizer spells so, names 👍 wholly and
👎 "thumbs down" in part). The ranker's opposite guard holds back the opposite of such an
emoji (:func:`opposite_pairs`): the sum alone credits 👍 and 👎 nearly alike for "great job
👍", and auto-react added 👎. (Scaling the sum by how much of the name is said was
measured and not kept: docs/TEXT_RANKING.md.)

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


# Words whose swap turns an emoji's name into its opposite's (👍 👎, 📈 📉, ⬆️ ⬇️): a
# message that names one wholly is not answered with the other (the ranker's opposite
# guard). Not *check*/*cross* (✅ ❌): *cross* alone names ❌ ("cross mark"), and "can cross
# that off the list" lost its ✔️.
OPPOSITE_WORDS = (("up", "down"), ("increasing", "decreasing"))
# Two-letter words that tell names apart (*thumbs up* from *thumbs down*, 👌 "ok hand"),
# kept where other two-letter words are not: a flag's code ("flag-is": *is*) or *in*, *of*.
TWO_LETTER_WORDS = frozenset("up ok no tv cd ox wc".split())


def name_word_sets(emoji) -> list[set[str]]:
    """The specific words of each of an emoji's short names and its CLDR name (a name with
    none, such as "+1" or "100", is left out)."""
    out = []
    for n in (*emoji.short_names, emoji.cldr_name):
        code = n.lower().startswith("flag")  # "flag-no" is Norway, not "no"
        ws = {
            stem(w)
            for w in re.split(r"[^a-z0-9]+", n.lower())
            if (len(w) > 2 or (w in TWO_LETTER_WORDS and not code)) and w not in STOP_WORDS and not w.isdigit()
        }
        if ws and ws not in out:
            out.append(ws)
    return out


def name_words(emoji) -> set[str]:
    """The specific words of an emoji's short names and CLDR name."""
    return set().union(*name_word_sets(emoji))


def opposite_pairs(emojis) -> np.ndarray:
    """(n, 2) column pairs (emoji, its opposite), both ways: emojis one of whose names turns
    into one of the other's when one word of :data:`OPPOSITE_WORDS` is swapped for its
    partner ("thumbs up" and "thumbs down", "chart increasing" and "chart decreasing")."""
    owners: dict[frozenset[str], set[int]] = defaultdict(set)
    for col, e in enumerate(emojis):
        for ws in name_word_sets(e):
            owners[frozenset(ws)].add(col)
    pairs = set()
    for a, b in OPPOSITE_WORDS:
        for ws, cols in list(owners.items()):
            if a in ws and b not in ws:
                for other in owners.get((ws - {a}) | {b}, ()):
                    for col in cols - {other}:
                        pairs |= {(col, other), (other, col)}
    return np.array(sorted(pairs), np.int64).reshape(-1, 2)


def _gather(m, text: np.ndarray, word: np.ndarray, n_cols: int) -> tuple[np.ndarray, np.ndarray]:
    """The sorted distinct ``text · n_cols + column`` keys of the rows ``word`` of the CSR
    matrix ``m`` added up per text, and their sums (the rows gathered in NumPy: a sparse
    product over every word cost 0.4 ms per message, a Python loop over the hits 1.4 ms
    per 256 messages, and SciPy's own overhead 0.3 ms for a single message)."""
    start = m.indptr[word]
    lengths = m.indptr[word + 1] - start
    cell = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths) + np.repeat(start, lengths)
    key = np.repeat(text, lengths) * n_cols + m.indices[cell]
    keys, which = np.unique(key, return_inverse=True)
    return keys, np.bincount(which, weights=m.data[cell], minlength=len(keys))


@dataclass
class NameHits:
    """The nonzero cells of a batch's name match: text rows, emoji columns, summed weights
    (each cell once)."""

    rows: np.ndarray
    cols: np.ndarray
    weights: np.ndarray
    n_texts: int
    n_emojis: int
    # per cell: the text says every word of one of the emoji's names (known for the emojis
    # of an opposite pair, :func:`opposite_pairs`; None: not known)
    whole: np.ndarray | None = None

    def opposed(self, pairs: np.ndarray) -> list[tuple[int, np.ndarray]]:
        """Per text that names an emoji wholly, the opposites (``pairs``: (emoji, its
        opposite) columns, :func:`opposite_pairs`) of what it names wholly that it does not
        name wholly too: 👎 for "great job 👍", and nothing for "👍 or 👎?"."""
        if self.whole is None or not len(pairs) or not self.whole.any():
            return []
        rows, cols = self.rows[self.whole], self.cols[self.whole]
        out = []
        for t in np.unique(rows[np.isin(cols, pairs[:, 0])]):  # few texts name one of a pair
            named = cols[rows == t]
            opposite = np.setdiff1d(pairs[np.isin(pairs[:, 0], named), 1], named)
            if len(opposite):
                out.append((int(t), opposite))
        return out

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
    def __init__(
        self,
        matrix,
        weight: float,
        vocab_digest: str = "",
        cover=None,
        owner: np.ndarray | None = None,
        opposites: np.ndarray | None = None,
        cover_stem: np.ndarray | None = None,
    ):
        self.matrix = matrix.tocsr().astype(np.float32)  # (vocabulary, catalog)
        self.matrix.sort_indices()
        # Which emojis of an opposite pair a text names wholly (None: not known, as for the
        # meaning match and a file built before it): (vocabulary, name) shares of each of
        # their names, each name's emoji, per word id the id of its stem (-1: in none of
        # those names; *thumb* and *thumbs* share one, so saying both counts it once), and
        # per word id whether it is in one of them (it has a stem id).
        self.cover = None if cover is None else cover.tocsr().astype(np.float32)
        self.owner = None if owner is None else np.asarray(owner, np.int64)
        self.cover_stem = None if cover_stem is None else np.asarray(cover_stem, np.int64)
        self._covers_something = None if self.cover_stem is None else self.cover_stem >= 0
        # (emoji, its opposite) column pairs (:func:`opposite_pairs`; empty: no such guard)
        self.opposites = np.zeros((0, 2), np.int64) if opposites is None else np.asarray(opposites, np.int64)
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
        named: list[tuple[int, set[str]]] = []  # (emoji column, a name's words)
        for col, e in enumerate(emojis):
            sets = name_word_sets(e)
            named += [(col, ws) for ws in sets]
            for w in set().union(*sets):
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
        pairs = opposite_pairs(emojis)
        paired = set(pairs[:, 0].tolist())  # only these need to know whether they are named wholly
        cover, owner, cover_stem = cls._coverage([(c, ws) for c, ws in named if c in paired], owners, words)
        return cls(m, weight, vocab_digest(words), cover, owner, pairs, cover_stem)

    @staticmethod
    def _coverage(named: list[tuple[int, set[str]]], owners: dict[str, list[int]], words: list[str]):
        """The (vocabulary, name) matrix of each word's share of each of ``named``'s names it
        is in (its specificity over the name's summed specificity: *thumb* 0.71 and *down*
        0.29 of "thumbs down"; a text that says them all has the whole name), each name's
        emoji column, and per vocabulary word the id of its stem (-1 where it is in none)."""
        from scipy.sparse import csr_matrix

        specific = {w: np.sqrt(1.0 / len(c)) for w, c in owners.items()}
        holds: dict[str, list[tuple[int, float]]] = defaultdict(list)
        for k, (_, ws) in enumerate(named):
            total = sum(specific[w] for w in ws)
            for w in ws:
                holds[w].append((k, specific[w] / total))
        rows, cols, vals = [], [], []
        stems: dict[str, int] = {}
        stem_ids = np.full(len(words), -1, np.int64)
        for row, word in enumerate(words):
            if word.startswith("<") or stem(word) not in holds:
                continue
            stem_ids[row] = stems.setdefault(stem(word), len(stems))
            for k, share in holds[stem(word)]:
                rows.append(row)
                cols.append(k)
                vals.append(share)
        cover = csr_matrix((vals, (rows, cols)), shape=(len(words), len(named)), dtype=np.float32)
        return cover, np.array([col for col, _ in named], np.int64), stem_ids

    def match(self, word_ids: np.ndarray) -> NameHits:
        """The summed weights of the distinct name words of each text, as the few nonzero
        (text, emoji) cells, and which of those the text names wholly (``whole``: all the
        words of one of the emoji's names). Most words name no emoji: one vectorised lookup
        finds the few that do."""
        n_words, n_emojis = self.matrix.shape
        rows, pos = np.nonzero(self._names_something[word_ids])
        pairs = np.unique(rows.astype(np.int64) * n_words + word_ids[rows, pos])  # a word said twice counts once
        text, word = pairs // n_words, pairs % n_words
        keys, weights = _gather(self.matrix, text, word, n_emojis)
        whole = None
        if self.cover is not None:
            whole = np.zeros(len(keys), bool)
            said = self._covers_something[word]  # most texts say no word of a paired emoji's names
            if said.any():
                n_names = self.cover.shape[1]
                t, w = text[said], word[said]
                stems = self.cover_stem[w]
                _, once = np.unique(t * (int(stems.max()) + 1) + stems, return_index=True)  # a stem once a text
                name_keys, share = _gather(self.cover, t[once], w[once], n_names)
                full = name_keys[share >= 1.0 - 1e-4]
                whole = np.isin(keys, (full // n_names) * n_emojis + self.owner[full % n_names])
        cells = (keys // n_emojis, keys % n_emojis, weights.astype(np.float32))
        return NameHits(*cells, word_ids.shape[0], n_emojis, whole)

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
            **(
                {}
                if self.cover is None
                else {
                    "cover_data": self.cover.data,
                    "cover_indices": self.cover.indices,
                    "cover_indptr": self.cover.indptr,
                    "cover_shape": np.array(self.cover.shape),
                    "cover_owner": self.owner,
                    "cover_stem": self.cover_stem,
                    "opposites": self.opposites,
                }
            ),
        )

    @classmethod
    def load(cls, path: Path) -> NameMatch:
        from scipy.sparse import csr_matrix

        with np.load(path) as z:
            m = csr_matrix((z["data"], z["indices"], z["indptr"]), shape=tuple(int(x) for x in z["shape"]))
            cover = owner = opposites = cover_stem = None
            if "cover_stem" in z.files:  # written with the opposite pairs (before them: neither)
                cover = csr_matrix(
                    (z["cover_data"], z["cover_indices"], z["cover_indptr"]),
                    shape=tuple(int(x) for x in z["cover_shape"]),
                )
                owner, opposites, cover_stem = z["cover_owner"], z["opposites"], z["cover_stem"]
            digest = str(z["vocab_digest"]) if "vocab_digest" in z.files else ""
            return cls(m, float(z["weight"]), digest, cover, owner, opposites, cover_stem)


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
