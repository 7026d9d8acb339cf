"""The sentence term: what a whole-sentence encoder reads in a message, distilled into a
network small enough for the bot's hot path, as one term of the whole-catalog score.

The SQAM reads a message as a bag of n-grams and a mean of static word vectors. The
whole all-MiniLM-L6-v2 encoder reads the sentence, and a logistic regression over its
sentence vectors (the *teacher*, trained offline on the whole-catalog tweets and, at a
lower weight, TweetEval's tweets of the popular emojis) ranks the
emojis of sad news, a lost game or a thank-you better than the word vectors do; but the
encoder runs at about 100 texts a second on two cores, 50–100 times too slow for the bot.
So a *student* learns the teacher's probabilities (KL divergence, on the training tweets and
TweetEval tweets): the message's idf-weighted n-grams pooled through the
student's own small table (2¹⁶ × 16, n-gram ids folded into it), next to the SQAM's own
pooled n-gram vector and word mean (which the ranker computes anyway), under one dense
layer and a softmax over the emojis the tweets use. It runs in NumPy, on features the
ranker already has.

The whole-catalog score adds ``weight · (log p(e | text) − log share(e))``: how much more
likely the student finds the emoji for this message than for any message (``share``: its
share of the teacher's training tweets), so the term reads the message and leaves
popularity to the SQAM's bias and the popularity mix. An emoji the student has no column
for gets the row's mean. ``weight`` (and the popularity mix next to it) is
chosen by `emojibot train catalog-head`. The file records a digest of the SQAM inputs it
reads (the n-gram table, the word vectors and the n-gram idf); a ranker whose SQAM
reads others ignores it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from models.ranker import dequantize_rows

FOLD = 1 << 16  # the student's table rows: n-gram bucket ids are folded modulo this


def inputs_digest(encoder) -> str:
    """Identifies the SQAM inputs the student reads (``models.ranker.NumpyQuestionEncoder``):
    its n-gram table, idf and word vectors, as shipped (int8 where they ship so)."""
    h = hashlib.sha256()
    for name in ("ngram_table_q", "ngram_idf", "word_table_q"):
        a = encoder.raw.get(name)
        if a is not None:
            h.update(name.encode())
            h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def quantize_rows(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int8 rows with one float32 scale each (``models.ranker.dequantize_rows`` reads them back)."""
    from models.heads import quantize_columns

    q, scale = quantize_columns(np.asarray(table, np.float32).T)
    return q.T.copy(), scale


class SentenceTerm:
    """The student's weights, its emojis' log shares and the term's weight; :meth:`bind`
    maps its emojis to a catalog's rows before it scores."""

    def __init__(
        self,
        emojis: Sequence[str],
        weights: dict[str, np.ndarray],
        log_share: np.ndarray,
        weight: float,
        inputs_digest: str,
    ):
        self.emojis = list(emojis)
        w = {k: np.asarray(v) for k, v in weights.items()}
        self.table = dequantize_rows(w["table_q"], w["table_scale"])  # (FOLD, dim)
        self.hidden = (w["hidden_w"].astype(np.float32), w["hidden_b"].astype(np.float32))
        self.out = (w["out_w"].astype(np.float32), w["out_b"].astype(np.float32))
        self.log_share = np.asarray(log_share, np.float32)
        self.weight = float(weight)
        self.inputs_digest = inputs_digest
        self._unfolded: np.ndarray | None = None  # the table repeated over every n-gram bucket
        self.columns: np.ndarray | None = None  # the student's emojis' catalog rows (bind)
        self.n_catalog = 0

    def bind(self, positions: dict[str, int], n_catalog: int) -> SentenceTerm:
        """Map the student's emojis to the catalog's rows (an emoji outside it is dropped)."""
        keep = np.asarray([j for j, e in enumerate(self.emojis) if e in positions], np.int64)
        self.columns = np.asarray([positions[self.emojis[j]] for j in keep], np.int64)
        self._keep = keep
        self.n_catalog = n_catalog
        return self

    def _logits(self, rows, sqam_inputs: np.ndarray) -> np.ndarray:
        """(B, student emojis): the student's logits for the texts' n-gram rows (B ×
        buckets, sparse: ``NumpyQuestionEncoder.ngram_rows``) and the SQAM's pooled n-gram
        vector and word mean (``NumpyQuestionEncoder.inputs``)."""
        if self._unfolded is None or self._unfolded.shape[0] != rows.shape[1]:
            self._unfolded = self.table[np.arange(rows.shape[1]) % len(self.table)]
        own = np.asarray(rows @ self._unfolded, np.float32)
        h = np.concatenate([own, sqam_inputs], axis=1) @ self.hidden[0]
        h += self.hidden[1]
        np.maximum(h, 0.0, out=h)
        z = h @ self.out[0]
        z += self.out[1]
        return z

    def log_odds(self, rows, sqam_inputs: np.ndarray) -> np.ndarray:
        """(B, student emojis): ``log p(e | text) − log share(e)`` (inputs as :meth:`_logits`)."""
        z = self._logits(rows, sqam_inputs)
        z -= z.max(axis=1, keepdims=True)
        z -= np.log(np.exp(z).sum(axis=1, keepdims=True))
        z -= self.log_share
        return z

    def add_to(self, s: np.ndarray, rows, sqam_inputs: np.ndarray, weight: float) -> None:
        """``s += weight · term``, in place: the student's emojis their log odds, every other
        catalog emoji the row's mean (a constant per row, which does not change the ranking:
        only the columns the student knows are touched, shifted by that mean). The mean, not
        the smallest: an emoji no training tweet had (🤤 🥰 🥳, newer than the tweets) is
        then neither pushed under every other nor lifted, so reactions can still teach it
        (with the smallest, a retrain no longer brought 🤤 into the top 3 for food)."""
        assert self.columns is not None, "bind the term to a catalog first"
        # log p = logits − (a per-row normaliser), which the mean takes out again: no softmax
        z = self._logits(rows, sqam_inputs)[:, self._keep]
        z -= self.log_share[self._keep]
        z -= z.mean(axis=1, keepdims=True)
        z *= np.float32(weight)
        s[:, self.columns] += z

    def scores(self, rows, sqam_inputs: np.ndarray) -> np.ndarray:
        """(B, catalog): the term (weight 1), every emoji the student has no column for at 0,
        the row's mean: what :meth:`add_to` adds."""
        out = np.zeros((rows.shape[0], self.n_catalog), np.float32)
        self.add_to(out, rows, sqam_inputs, 1.0)
        return out

    def save(self, path: Path) -> None:
        """Writes the student as int8 table rows with a scale each and float32 layers."""
        q, scale = quantize_rows(self.table)
        np.savez_compressed(
            path,
            emojis=np.array(self.emojis),
            table_q=q,
            table_scale=scale,
            hidden_w=self.hidden[0],
            hidden_b=self.hidden[1],
            out_w=self.out[0],
            out_b=self.out[1],
            log_share=self.log_share,
            weight=np.array(self.weight),
            inputs_digest=np.array(self.inputs_digest),
        )

    @classmethod
    def load(cls, path: Path) -> SentenceTerm:
        with np.load(path) as z:
            weights = {k: z[k] for k in ("table_q", "table_scale", "hidden_w", "hidden_b", "out_w", "out_b")}
            return cls(
                [str(e) for e in z["emojis"]], weights, z["log_share"], float(z["weight"]), str(z["inputs_digest"])
            )

    @classmethod
    def from_float(
        cls, emojis: Sequence[str], weights: dict[str, np.ndarray], log_share, weight: float, digest: str
    ) -> SentenceTerm:
        """From a newly trained student's float weights (``table``, ``hidden_w`` …), as
        :meth:`load` would read them back after :meth:`save` (the table as int8)."""
        table_q, table_scale = quantize_rows(np.asarray(weights["table"], np.float32))
        q = {
            "table_q": table_q,
            "table_scale": table_scale,
            **{k: weights[k] for k in ("hidden_w", "hidden_b", "out_w", "out_b")},
        }
        return cls(emojis, q, log_share, weight, digest)
