"""Supervised surface-feature heads that sharpen the SQAM on emoji sets with labelled data.

The SQAM ranks every catalog emoji through one shared space, which is what lets it rank
emojis it never saw with a tweet. Where many labelled texts exist for a fixed set of
emojis (TweetEval's 20, the airline tweets' 🎉 😈 😡), a plain linear model over TF-IDF
word and character n-grams still catches surface cues (hashtags, place names, spellings)
better than the siamese towers do. A *head* is such a linear model for one emoji group
(for the airline group, plus a small BiLSTM: :class:`SequenceHead`); its scores join the
SQAM scores of those emojis as

    a_e(x)   = β_g · h_e(x) + offset_e
    score(e) = cos(q, a_e) − λ·hub(e) + a_e(x) − max_{e' ∈ g} a_e'(x)

Subtracting the group's maximum makes the adjustment ≤ 0: a head reorders its emojis
among themselves (the per-text shift is the same for all of them, so a ranking over the
group alone is that of ``cos + a``) and can only push the less likely members down, never
lift the group above the rest of the catalog — the full-catalog ranking stays diverse.
β and the per-emoji offsets (which raise macro-F1) are tuned on out-of-fold scores of
TweetEval train by ``emojibot train heads`` (val is only reported). Emojis outside every
group are ranked by the SQAM alone.

Features: hashed word 1–2-grams and character 1–6-grams (across word boundaries, so
"so hot" gives "o h"), each block with sublinear tf, idf and L2 normalisation;
scikit-learn's ``HashingVectorizer`` does the hashing at training and inference alike, so
nothing is stored per n-gram. The character block is recorded in the heads file: a file
from before it (char 2–5-grams within word boundaries) is read with the features it was
trained on. Optionally
four sentiment-lexicon columns (VADER's negative, neutral, positive and compound scores,
from PyPI `vaderSentiment`): they lifted the linear airline head of the time (a LinearSVC;
5-fold CV accuracy 0.816 → 0.828) and left the TweetEval head where it was.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.recurrent import BILSTM_PARTS, bilstm_directions, bilstm_max_pool
from models.text import TextBatch, mean_word_vectors

BLOCK_FEATURES = 1 << 17  # per block (word, char): 2^18 weights per emoji in all
MAX_CHARS = 2_000  # as the tokenizer: the rest of a huge message adds nothing


def answers_digest(path: Path) -> str:
    """Identifies the SQAM a head set was tuned with (its answer matrix changes every training)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


LEXICON_FEATURES = 4  # VADER neg, neu, pos, compound

# The character block: (analyzer, shortest, longest). Out of fold on TweetEval train
# (LinearSVC C 0.2, class-balanced) char 1–6 across words scored macro-F1 0.2988 against
# 0.2948 for char_wb 2–5, at the same 2^17 buckets (README).
CHAR_NGRAMS = ("char", 1, 6)
LEGACY_CHAR_NGRAMS = ("char_wb", 2, 5)  # heads files that do not record theirs


class SurfaceFeatures:
    """Raw text → L2-normalised TF-IDF rows over hashed word and character n-grams, and
    optionally the sentiment-lexicon columns."""

    def __init__(self, idf: Sequence[np.ndarray], lexicon: bool = False, char: tuple[str, int, int] = CHAR_NGRAMS):
        from sklearn.feature_extraction.text import HashingVectorizer

        common = {"n_features": BLOCK_FEATURES, "alternate_sign": False, "norm": None, "dtype": np.float32}
        analyzer, shortest, longest = char
        self.char = (str(analyzer), int(shortest), int(longest))
        self.vectorizers = [
            HashingVectorizer(analyzer="word", ngram_range=(1, 2), **common),
            HashingVectorizer(analyzer=self.char[0], ngram_range=self.char[1:], **common),
        ]
        self.idf = [np.asarray(v, dtype=np.float32) for v in idf]
        self.lexicon = lexicon
        self._vader = None

    @property
    def n_features(self) -> int:
        return 2 * BLOCK_FEATURES + (LEXICON_FEATURES if self.lexicon else 0)

    def sentiment(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), 4) VADER scores: negative, neutral, positive, compound."""
        if self._vader is None:
            from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

            self._vader = SentimentIntensityAnalyzer()
        out = np.zeros((len(texts), LEXICON_FEATURES), np.float32)
        for i, t in enumerate(texts):
            d = self._vader.polarity_scores(t[:MAX_CHARS])
            out[i] = (d["neg"], d["neu"], d["pos"], d["compound"])
        return out

    @property
    def blocks(self) -> list[str]:
        """The blocks in words, for manifests: ``["word 1-2", "char 1-6", …]``."""
        a, lo, hi = self.char
        return ["word 1-2", f"{a} {lo}-{hi}"] + (["VADER neg, neu, pos, compound"] if self.lexicon else [])

    @staticmethod
    def counts(texts: Sequence[str]):
        """Per-block raw count matrices (used by training to compute document frequencies)."""
        return SurfaceFeatures([np.ones(BLOCK_FEATURES)] * 2)._counts(texts)

    def _counts(self, texts: Sequence[str]):
        clean = [t[:MAX_CHARS].encode("utf-8", "replace").decode("utf-8") for t in texts]
        return [v.transform(clean) for v in self.vectorizers]

    def transform(self, texts: Sequence[str]):
        """(len(texts), 2 × BLOCK_FEATURES) CSR rows. Works on the CSR arrays directly:
        building diagonal matrices per call cost ten times the hashing itself."""
        from scipy.sparse import csr_matrix, hstack

        blocks = []
        for m, idf in zip(self._counts(texts), self.idf, strict=True):
            m = csr_matrix(m, dtype=np.float32)
            m.sum_duplicates()
            data = (1.0 + np.log(m.data)) * idf[m.indices]
            rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
            norms = np.sqrt(np.bincount(rows, weights=data * data, minlength=m.shape[0]))
            m.data = (data / np.maximum(norms, 1e-12)[rows]).astype(np.float32)
            blocks.append(m)
        if self.lexicon:
            blocks.append(csr_matrix(self.sentiment(texts)))
        return hstack(blocks, format="csr", dtype=np.float32)


def document_idf(count_blocks) -> list[np.ndarray]:
    """Smoothed idf per block, as scikit-learn's TfidfTransformer: ln((1+n)/(1+df)) + 1."""
    out = []
    for m in count_blocks:
        n = m.shape[0]
        df = np.bincount(m.tocsc().indices, minlength=m.shape[1]).astype(np.float64)
        out.append((np.log((1.0 + n) / (1.0 + df)) + 1.0).astype(np.float32))
    return out


def quantize_columns(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int8 weights with one float scale per column (a quarter of float32's size)."""
    scale = np.maximum(np.abs(w).max(axis=0), 1e-12) / 127.0
    return np.round(w / scale).astype(np.int8), scale.astype(np.float32)


SEQUENCE_PARTS = (*BILSTM_PARTS, "dense_w", "dense_b")


@dataclass
class SequenceHead:
    """A small BiLSTM classifier over the SQAM's own word vectors: BiLSTM → max-pool →
    dense, K logits. It reads word order, which the n-gram model cannot, and the two make
    different mistakes; its dense layer ships already scaled to its share of the head."""

    weights: dict[str, np.ndarray]  # the SEQUENCE_PARTS

    def logits(self, word_vectors: np.ndarray, batch: TextBatch) -> np.ndarray:
        """(B, K) logits for a featurised batch (word ids into ``word_vectors``' vocabulary)."""
        w = self.weights
        order = np.argsort(-batch.lengths, kind="stable")
        lengths = batch.lengths[order]
        emb = word_vectors[batch.word_ids[order, : int(lengths.max())]]
        pooled = bilstm_max_pool(emb, lengths, bilstm_directions(w))
        out = np.empty((len(order), w["dense_w"].shape[1]), np.float32)
        out[order] = pooled @ w["dense_w"] + w["dense_b"]
        return out


def word_block(word_vectors: np.ndarray, batch: TextBatch) -> np.ndarray:
    """(B, D) the heads' word block: the mean of a text's SQAM word vectors (MiniLM-distilled,
    frozen by a retrain), L2-normalised. Dense meaning next to the sparse n-grams: a word
    the n-grams never saw with a label still lands near words they did."""
    m = mean_word_vectors(word_vectors, batch.word_ids)
    return m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-8)


@dataclass
class HeadGroup:
    """One head: the emojis it scores, its weights and how it joins the SQAM.

    Its score is linear over the surface features and, where it has them, over the word
    block (``word_weights``), plus the logits of a sequence head where it has one (trained
    on the same labels; the two are stacked by cross-validation).
    """

    name: str
    emojis: list[str]
    weights: np.ndarray  # (features, K) float32
    bias: np.ndarray  # (K,)
    beta: float  # strength of the centred head scores next to the SQAM cosines
    offsets: np.ndarray  # (K,) per-emoji offsets (macro-F1), 0 where not tuned
    sequence: SequenceHead | None = None
    word_weights: np.ndarray | None = None  # (D, K) float32 over :func:`word_block`
    # The sentence block: a logistic regression over the text's all-MiniLM-L6-v2 sentence
    # vector (models.minilm), its log-probabilities added at ``sentence_share`` next to the
    # head's scores: (384, K) weights, (K,) bias. The TweetEval head has one, and the
    # airline head where its stack gives the member a weight (README).
    sentence_weights: np.ndarray | None = None
    sentence_bias: np.ndarray | None = None
    sentence_share: float = 0.0

    def head_scores(self, x, word_vectors: np.ndarray | None = None, batch: TextBatch | None = None) -> np.ndarray:
        """(B, K) raw head scores for feature rows ``x`` (and the featurised batch, which
        a group with a word block or a sequence head needs)."""
        h = np.asarray(x @ self.weights) + self.bias
        if (self.sequence is not None or self.word_weights is not None) and (word_vectors is None or batch is None):
            raise ValueError(f"head {self.name!r} reads words: pass the word vectors and the batch")
        if self.word_weights is not None:
            h = h + word_block(word_vectors, batch) @ self.word_weights
        if self.sequence is not None:
            h = h + self.sequence.logits(word_vectors, batch)
        return h

    @property
    def reads_sentences(self) -> bool:
        return self.sentence_weights is not None and self.sentence_share != 0.0

    def sentence_scores(self, sentences: np.ndarray) -> np.ndarray:
        """(B, K) the sentence block's log-probabilities for (B, 384) sentence vectors."""
        assert self.sentence_weights is not None and self.sentence_bias is not None
        z = sentences @ self.sentence_weights + self.sentence_bias
        z -= z.max(axis=1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=1, keepdims=True))

    def adjust(
        self,
        x,
        word_vectors: np.ndarray | None = None,
        batch: TextBatch | None = None,
        sentences: np.ndarray | None = None,
    ) -> np.ndarray:
        """(B, K) additive adjustment of the group's emojis for feature rows ``x`` (and the
        texts' sentence vectors, which a group with a sentence block needs)."""
        adj = self.beta * self.head_scores(x, word_vectors, batch) + self.offsets
        if self.reads_sentences:
            if sentences is None:
                raise ValueError(f"head {self.name!r} reads sentence vectors: pass them")
            adj = adj + self.sentence_share * self.sentence_scores(sentences)
        return adj - adj.max(axis=1, keepdims=True)


SENTENCE_DIM = 384  # all-MiniLM-L6-v2's sentence vectors
_REMEMBERED: dict[bytes, np.ndarray] = {}  # text key → float16 sentence vector (remember_sentences)


def remember_sentences(texts: Sequence[str], vectors: np.ndarray) -> None:
    """Keep the texts' sentence vectors (from the training's sentence cache) for this
    process, so that ranking them among TweetEval's candidates again reads them instead of
    running the encoder: what an evaluation that repeats its tweets does (the retrain gate
    measures two versions on TweetEval val). Only what a caller hands over is kept."""
    from models.minilm import text_keys

    for k, v in zip(text_keys(texts).tolist(), np.asarray(vectors, np.float16), strict=True):
        _REMEMBERED[k] = v


class TextHeads:
    """All head groups of an artifact folder, with their shared feature extractor."""

    def __init__(self, features: SurfaceFeatures, groups: list[HeadGroup], sqam_digest: str):
        self.features = features
        self.groups = groups
        self.sqam_digest = sqam_digest
        self._encoder = None  # models.minilm.MiniLM, loaded on first use

    @property
    def reads_sentences(self) -> bool:
        """Whether a group has a sentence block (ranking its candidates runs the encoder)."""
        return any(g.reads_sentences for g in self.groups)

    def sentence_vectors(self, texts: Sequence[str]) -> np.ndarray:
        """(B, 384) the texts' all-MiniLM-L6-v2 sentence vectors, for a group with a
        sentence block, at float16's precision (as the sentence cache keeps them and the
        block was fitted on them, so a vector read back from :func:`remember_sentences` and
        one encoded now are the same). The encoder loads on first use (about a second, 90
        MB) and raises :class:`models.minilm.MiniLMUnavailable`, with the install command,
        where its package is missing."""
        from models.minilm import MiniLM, text_keys

        keys = text_keys(texts).tolist()
        out = np.zeros((len(texts), SENTENCE_DIM), np.float32)
        todo = [i for i, k in enumerate(keys) if k not in _REMEMBERED]
        for i, k in enumerate(keys):
            if k in _REMEMBERED:
                out[i] = _REMEMBERED[k]
        if todo:
            if self._encoder is None:
                self._encoder = MiniLM()
            out[todo] = self._encoder.encode([texts[i] for i in todo]).astype(np.float16)
        return out

    def save(self, path: Path) -> None:
        arrays: dict[str, np.ndarray] = {
            "idf_word": self.features.idf[0].astype(np.float16),
            "idf_char": self.features.idf[1].astype(np.float16),
            "groups": np.array([g.name for g in self.groups]),
            "sqam_digest": np.array(self.sqam_digest),
            "lexicon": np.array(self.features.lexicon),
            "char_ngrams": np.array([str(v) for v in self.features.char]),
        }
        n_hashed = 2 * BLOCK_FEATURES
        for g in self.groups:
            # int8 for the hashed n-gram weights; the few lexicon weights stay float32 (they
            # would otherwise set the quantisation scale of the whole column).
            q, scale = quantize_columns(g.weights[:n_hashed])
            if self.features.lexicon:
                arrays[f"{g.name}_lexicon_weights"] = g.weights[n_hashed:].astype(np.float32)
            arrays |= {
                f"{g.name}_emojis": np.array(g.emojis),
                f"{g.name}_weights_q": q,
                f"{g.name}_weights_scale": scale,
                f"{g.name}_bias": g.bias.astype(np.float32),
                f"{g.name}_beta": np.array(g.beta, dtype=np.float32),
                f"{g.name}_offsets": g.offsets.astype(np.float32),
            }
            if g.word_weights is not None:  # D × K: float32
                arrays[f"{g.name}_word_weights"] = g.word_weights.astype(np.float32)
            if g.sentence_weights is not None and g.sentence_bias is not None:  # 384 × K: float32
                arrays |= {
                    f"{g.name}_sentence_weights": g.sentence_weights.astype(np.float32),
                    f"{g.name}_sentence_bias": g.sentence_bias.astype(np.float32),
                    f"{g.name}_sentence_share": np.array(g.sentence_share, dtype=np.float32),
                }
            if g.sequence is not None:  # small (tens of kB): float32
                arrays |= {f"{g.name}_seq_{k}": g.sequence.weights[k].astype(np.float32) for k in SEQUENCE_PARTS}
        np.savez_compressed(path, **arrays)

    @classmethod
    def load(cls, path: Path) -> TextHeads:
        with np.load(path) as z:
            lexicon = bool(z["lexicon"]) if "lexicon" in z.files else False
            char = LEGACY_CHAR_NGRAMS
            if "char_ngrams" in z.files:
                a, lo, hi = (str(v) for v in z["char_ngrams"])
                char = (a, int(lo), int(hi))
            features = SurfaceFeatures([z["idf_word"], z["idf_char"]], lexicon=lexicon, char=char)
            groups = []
            for name in [str(n) for n in z["groups"]]:
                weights = z[f"{name}_weights_q"].astype(np.float32) * z[f"{name}_weights_scale"]
                if lexicon:
                    weights = np.vstack([weights, z[f"{name}_lexicon_weights"]])
                groups.append(
                    HeadGroup(
                        name=name,
                        emojis=[str(e) for e in z[f"{name}_emojis"]],
                        weights=weights,
                        bias=z[f"{name}_bias"].astype(np.float32),
                        beta=float(z[f"{name}_beta"]),
                        offsets=z[f"{name}_offsets"].astype(np.float32),
                        sequence=(
                            SequenceHead({k: z[f"{name}_seq_{k}"].astype(np.float32) for k in SEQUENCE_PARTS})
                            if f"{name}_seq_dense_w" in z.files
                            else None
                        ),
                        word_weights=(
                            z[f"{name}_word_weights"].astype(np.float32) if f"{name}_word_weights" in z.files else None
                        ),
                        **_sentence_block(z, name),
                    )
                )
            return cls(features, groups, str(z["sqam_digest"]))


def _sentence_block(z, name: str) -> dict:
    """A group's sentence block as :class:`HeadGroup` takes it (none in a file without one)."""
    if f"{name}_sentence_weights" not in z.files:
        return {}
    return {
        "sentence_weights": z[f"{name}_sentence_weights"].astype(np.float32),
        "sentence_bias": z[f"{name}_sentence_bias"].astype(np.float32),
        "sentence_share": float(z[f"{name}_sentence_share"]),
    }


def rebind_heads(src: Path, dst: Path, sqam_digest: str) -> None:
    """Copy a heads file to ``dst``, bound to another SQAM (a fine-tuned one: its heads are
    carried over, and the retrain gate measures them with it). The arrays are copied as
    they are, never re-quantised."""
    with np.load(src) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["sqam_digest"] = np.array(sqam_digest)
    np.savez_compressed(dst, **arrays)
