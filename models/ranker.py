"""Text → emoji ranking from the shipped artifacts, in NumPy.

The Keras SQAM is what trains; at inference only the question tower runs, per message,
and every catalog emoji's answer vector is precomputed at training time. The question
tower is small (a 96-unit BiLSTM, an n-gram bag, a few dense layers), so it runs here in
NumPy: no TensorFlow import on the hot path, a cold start of a fraction of a second, and
a few hundred MB less memory. ``tests/test_sqam.py`` checks it against the Keras model.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.artifacts import artifacts_dir, read_manifest, require
from models.heads import HEADS_FILE, TextHeads, answers_digest
from models.recurrent import bilstm_max_pool
from models.text import TextBatch, TextFeaturizer, Vocabulary

QUESTION_FILE = "sqam_question.npz"
ANSWERS_FILE = "sqam_answers.npy"
VOCAB_FILE = "vocab.txt"
HUB_FILE = "sqam_hub.npy"
CHARS_FILE = "emoji_chars.json"


class EmptyTextError(ValueError):
    """Raised for texts with nothing to rank (empty or whitespace only)."""


_ACTIVATIONS = {"relu": lambda x: np.maximum(x, 0.0), "tanh": np.tanh}


class NumpyQuestionEncoder:
    """Forward pass of the SQAM question encoder (question tower + shared stack)."""

    def __init__(self, weights: dict[str, np.ndarray]):
        w = {k: np.asarray(v, dtype=np.float32) for k, v in weights.items() if k != "activation"}
        self.word_vectors = w["word_vectors"]
        self.lstm = [(w[f"lstm_{d}_kernel"], w[f"lstm_{d}_recurrent"], w[f"lstm_{d}_bias"]) for d in ("fw", "bw")]
        if "ngram_table_q" in w:  # int8 rows with one scale each (how the table ships)
            w["ngram_table"] = w.pop("ngram_table_q") * w.pop("ngram_table_scale")[:, None]
        self.ngram_table = w.get("ngram_table")
        self.ngram_idf = w.get("ngram_idf")  # None: mean pooling
        self.question_dense = (w["question_dense_w"], w["question_dense_b"])
        act = str(weights.get("activation", "relu"))
        if act not in _ACTIVATIONS:
            raise ValueError(f"unsupported activation {act!r} in the question weights")
        self.act = _ACTIVATIONS[act]
        n_shared = sum(1 for k in w if k.startswith("shared_") and k.endswith("_w"))
        self.shared = [(w[f"shared_{i}_w"], w[f"shared_{i}_b"]) for i in range(n_shared)]

    def encode(self, batch: TextBatch) -> np.ndarray:
        """(B, D) question vectors, L2-normalised."""
        order = np.argsort(-batch.lengths, kind="stable")
        W, lengths = batch.word_ids[order], batch.lengths[order]
        T = int(lengths.max())
        emb = self.word_vectors[W[:, :T]]  # (B, T, E)
        parts = [bilstm_max_pool(emb, lengths, self.lstm)]
        if self.ngram_table is not None:
            parts.append(self._ngram_mean(batch.ngram_ids[order]))
        x = np.concatenate(parts, axis=-1) if len(parts) > 1 else parts[0]
        x = self.act(x @ self.question_dense[0] + self.question_dense[1])
        for i, (wt, b) in enumerate(self.shared):
            x = x @ wt + b
            x = np.tanh(x) if i == len(self.shared) - 1 else self.act(x)
        x = x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-8)
        out = np.empty_like(x)
        out[order] = x
        return out

    def _ngram_mean(self, ids: np.ndarray) -> np.ndarray:
        """Pooled n-gram embeddings of each row (idf-weighted and L2-normalised, or the
        mean), as one sparse (B × buckets) @ (buckets × D) product."""
        from scipy.sparse import csr_matrix

        assert self.ngram_table is not None
        nz = ids != 0
        rows = np.nonzero(nz)[0]
        if self.ngram_idf is not None:
            w = np.where(nz, self.ngram_idf[ids], 0.0)
            norm = np.sqrt(np.maximum((w * w).sum(axis=1), 1e-12))
            data = (w[nz] / norm[rows]).astype(np.float32)
        else:
            counts = np.maximum(nz.sum(axis=1), 1)
            data = (1.0 / counts[rows]).astype(np.float32)
        m = csr_matrix((data, (rows, ids[nz])), shape=(ids.shape[0], self.ngram_table.shape[0]))
        return np.asarray(m @ self.ngram_table, dtype=np.float32)


@dataclass
class Ranked:
    """One emoji of a ranking."""

    emoji: str
    score: float


class TextRanker:
    """Loads the shipped artifacts once and ranks texts against the catalog (or a subset)."""

    def __init__(self, folder: str | os.PathLike | None = None):
        self.folder = Path(artifacts_dir(folder))
        require(self.folder, QUESTION_FILE, ANSWERS_FILE, VOCAB_FILE, CHARS_FILE)
        self.manifest = read_manifest(self.folder)
        self.version = str(self.manifest.get("version", "unversioned"))
        with np.load(self.folder / QUESTION_FILE) as z:
            self.encoder = NumpyQuestionEncoder(dict(z))
        self.answers = np.load(self.folder / ANSWERS_FILE).astype(np.float32)
        # Hub correction: some emojis sit close to every text ("hubs") and would top every
        # ranking; subtracting λ × their mean cosine over typical chat texts evens that out.
        hub_path = self.folder / HUB_FILE
        self.hub_lambda = float(self.manifest.get("sqam", {}).get("hub_lambda", 0.0))
        self.hub = (
            np.load(hub_path).astype(np.float32) if hub_path.exists() else np.zeros(len(self.answers), np.float32)
        )
        self.chars: list[str] = json.loads((self.folder / CHARS_FILE).read_text(encoding="utf-8"))
        self._positions = {c: i for i, c in enumerate(self.chars)}
        self.heads, self.heads_note = self._load_heads()
        self.featurizer = TextFeaturizer(Vocabulary.load(self.folder / VOCAB_FILE))
        self._catalog = None
        self._candidate_cache: dict[tuple[str, ...], np.ndarray] = {}

    def _load_heads(self) -> tuple[TextHeads | None, str]:
        """The supervised heads, if present and tuned with this very SQAM (else none, and why)."""
        path = self.folder / HEADS_FILE
        if not path.exists():
            return None, f"no {HEADS_FILE}: the SQAM ranks alone (`emojibot train heads` builds it)"
        heads = TextHeads.load(path)
        if heads.sqam_digest != answers_digest(self.folder / ANSWERS_FILE):
            return None, f"{HEADS_FILE} was tuned with another SQAM: ignored until `emojibot train heads` reruns"
        self._head_positions = [
            np.asarray([self._positions[e] for e in g.emojis], dtype=np.int64) for g in heads.groups
        ]
        return heads, "heads: " + ", ".join(f"{g.name} ({len(g.emojis)} emojis)" for g in heads.groups)

    @property
    def catalog(self):
        """The emoji catalog (loaded on first use: plain ranking does not need it)."""
        if self._catalog is None:
            from models.catalog import EmojiCatalog

            self._catalog = EmojiCatalog.load()
        return self._catalog

    def candidate_indices(self, candidates: Sequence[str]) -> np.ndarray:
        """Answer-matrix rows of the given emojis (Unicode or short names), duplicates
        removed, first occurrence kept. Raises UnknownEmojiError for an unknown one."""
        key = tuple(candidates)
        rows = self._candidate_cache.get(key)
        if rows is None:
            pos = self._positions
            found: dict[int, None] = {}
            for q in candidates:
                char = q if q in pos else self.catalog.lookup(q).char
                if char not in pos:
                    from models.catalog import UnknownEmojiError

                    raise UnknownEmojiError(q)
                found.setdefault(pos[char], None)
            if not found:
                raise ValueError("the candidate list is empty")
            rows = np.fromiter(found, dtype=np.int64)
            if len(self._candidate_cache) >= 1024:  # bounded: users send arbitrary lists
                self._candidate_cache.pop(next(iter(self._candidate_cache)))
            self._candidate_cache[key] = rows
        return rows

    def cosines(self, texts: Sequence[str]) -> np.ndarray:
        """Raw (len(texts), catalog) cosines, without the hub correction."""
        return self.encoder.encode(self.featurizer.featurize(texts)) @ self.answers.T

    def scores(
        self, texts: Sequence[str], candidates: Sequence[str] | None = None, allow_empty: bool = False
    ) -> np.ndarray:
        """(len(texts), n_candidates) cosine scores; raises EmptyTextError on blank texts
        unless ``allow_empty`` (then a blank text is scored as an unknown word)."""
        for t in texts:
            if not isinstance(t, str):
                raise EmptyTextError(f"text must be a string, not {type(t).__name__}")
            if not allow_empty and not t.strip():
                raise EmptyTextError("text is empty: give a message to find emojis for")
        batch = self.featurizer.featurize(texts)
        q = self.encoder.encode(batch)
        if candidates is None:
            s = q @ self.answers.T - self.hub_lambda * self.hub
            rows = None
        else:
            rows = self.candidate_indices(candidates)
            s = q @ self.answers[rows].T - self.hub_lambda * self.hub[rows]
        if self.heads is not None:
            self._add_heads(s, texts, batch, rows)
        return s

    def _add_heads(self, s: np.ndarray, texts: Sequence[str], batch: TextBatch, rows: np.ndarray | None) -> None:
        """Add each head's centred scores to the columns of ``s`` that hold its emojis.

        (Skipping a head for texts whose top k it cannot change was tried: on tweets the
        TweetEval head matters to 99.6% of them and the airline head to 72%, and the
        bookkeeping cost what it saved.)"""
        assert self.heads is not None
        targets = []  # (group, its members' columns in s, which members)
        for g, pos in zip(self.heads.groups, self._head_positions, strict=True):
            if rows is None:
                targets.append((g, pos, slice(None)))
                continue
            col = {int(r): j for j, r in enumerate(rows)}
            members = [m for m, p in enumerate(pos) if int(p) in col]
            if members:
                targets.append((g, np.asarray([col[int(pos[m])] for m in members]), np.asarray(members)))
        if not targets:
            return
        x = self.heads.features.transform(texts)
        for g, cols, members in targets:
            s[:, cols] += g.adjust(x, self.encoder.word_vectors, batch)[:, members]

    def rank(self, texts: Sequence[str], k: int = 5, candidates: Sequence[str] | None = None) -> list[list[Ranked]]:
        """Top-``k`` emojis for each text, best first."""
        if not texts:
            return []
        s = self.scores(texts, candidates)
        names = self.chars if candidates is None else [self.chars[i] for i in self.candidate_indices(candidates)]
        k = max(1, min(k, s.shape[1]))
        top = np.argpartition(-s, k - 1, axis=1)[:, :k]
        out = []
        for row, idx in zip(s, top, strict=False):
            idx = idx[np.argsort(-row[idx])]
            out.append([Ranked(names[i], float(row[i])) for i in idx])
        return out
