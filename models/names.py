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
"""

from __future__ import annotations

import re
from collections import defaultdict
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

    def scores(self, word_ids: np.ndarray) -> np.ndarray:
        """(B, catalog): the summed weights of the distinct name words in each text."""
        out = np.zeros((word_ids.shape[0], self.matrix.shape[1]), np.float32)
        self.add_to(out, word_ids, 1.0)
        return out

    def _matches(self, word_ids: np.ndarray):
        """(row, emoji columns, weights) for each distinct name word of each text. Most
        words name no emoji: one vectorised lookup finds the few that do, and only those
        are visited (a sparse product cost 0.4 ms per message, this a few µs)."""
        m = self.matrix
        hits = np.nonzero(self._names_something[word_ids])
        seen = set()
        for r, t in zip(*hits, strict=True):
            wid = int(word_ids[r, t])
            if (r, wid) in seen:  # a word said twice names the emoji once
                continue
            seen.add((r, wid))
            a, z = m.indptr[wid], m.indptr[wid + 1]
            yield int(r), m.indices[a:z], m.data[a:z]

    def add_to(self, s: np.ndarray, word_ids: np.ndarray, weight: float) -> None:
        """``s += weight · scores(word_ids)``, in place."""
        for r, cols, vals in self._matches(word_ids):
            s[r, cols] += weight * vals

    def strongest(self, word_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per text, the emoji its names match most and that match (−1 and 0 for none)."""
        best_col = np.full(word_ids.shape[0], -1, np.int64)
        best = np.zeros(word_ids.shape[0], np.float32)
        sums: dict[tuple[int, int], float] = defaultdict(float)
        for r, cols, vals in self._matches(word_ids):
            for c, v in zip(cols.tolist(), vals.tolist(), strict=True):
                sums[r, c] += v
        for (r, c), v in sums.items():
            if v > best[r]:
                best_col[r], best[r] = c, v
        return best_col, best

    def save(self, path: Path) -> None:
        m = self.matrix
        np.savez_compressed(
            path,
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
