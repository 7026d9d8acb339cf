"""The catalog head: a linear model over the SQAM's own hashed n-grams, one column per emoji
people used in the whole-catalog tweets, as one term of the whole-catalog score.

The SQAM reads a message's n-grams through a 96-d table under dense layers: a low-rank
view, which is what lets it rank every catalog emoji through one shared space. A plain
linear model over the same n-grams (a TF-IDF + LinearSVC: the issue's yardstick) catches
surface cues per emoji (a word, a hashtag, a spelling) that the low-rank view blurs, and on
the tune rows it is as good as the SQAM alone; the two make different mistakes, so their
sum is better than either (README). It reads the very idf-weighted, L2-normalised n-gram
rows the question tower pools (``NumpyQuestionEncoder.ngram_rows``): no second
featurisation, no scikit-learn at inference.

Shipped small and fast: the LinearSVC's weights are pruned to the 300,000 (of 131,072 ×
653 in the shipped head) with the largest ``|w| · idf``, what a weight typically adds to a
score (on the tune rows as good as all of them, and about a third of the work per message
of keeping the 500,000 largest ``|w|``: 4.6 ms against 13 per 512 messages, which spent
it on the everyday n-grams), and stored as a sparse matrix
with int8 values and one scale per emoji. An emoji the head has no column
for (never used in a training tweet) gets ``unseen``, the one-vs-rest margin of "not this
emoji" (−1): its rank then comes from the SQAM, its name and its popularity, as before.

The whole-catalog score adds ``weight · (head − unseen)``: nothing for an emoji the head
has no column for. ``weight`` is chosen on the SQAM's tune rows by `emojibot train
catalog-head` (never on the validation side). The file records a
digest of the n-gram idf it was trained on; a ranker with another n-gram weighting ignores it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

UNSEEN = -1.0  # a LinearSVC's margin for "not this emoji"


def idf_digest(idf: np.ndarray) -> str:
    """Identifies the n-gram weighting whose rows the head reads."""
    return hashlib.sha256(np.ascontiguousarray(idf, dtype=np.float32).tobytes()).hexdigest()[:16]


class SparseProduct:
    """``out += a @ b`` for a fixed CSR matrix ``b`` and CSR rows ``a``, into a dense
    float32 ``out`` (:meth:`add_into`). SciPy's product of two sparse matrices multiplies
    twice (once to count the result's entries, once to fill them) and then makes the result
    dense; here its own compiled routines multiply once, into room for as many entries a
    row as ``b`` has distinct columns (counted once, here: a smaller room would be written
    past), and add the result into ``out`` directly: 1.6 against 2.6 ms for the catalog
    head over 256 messages. Those routines are SciPy's internals: where they are missing or
    changed, the public product."""

    def __init__(self, b):
        from scipy.sparse import csr_matrix

        self.b = csr_matrix(b, dtype=np.float32)
        self.per_row = int(np.unique(self.b.indices).size)

    def add_into(self, out: np.ndarray, a) -> None:
        b = self.b
        if a.shape[1] != b.shape[0] or out.shape != (a.shape[0], b.shape[1]):
            raise ValueError(f"cannot add a {a.shape} by {b.shape} product into {out.shape}")
        try:
            from scipy.sparse import _sparsetools

            n = a.shape[0] * self.per_row
            idx = np.int32 if max(a.shape[1], b.shape[1], n, a.nnz, b.nnz) < 2**31 else np.int64
            indptr, indices, data = np.empty(a.shape[0] + 1, idx), np.empty(n, idx), np.empty(n, np.float32)
            _sparsetools.csr_matmat(
                a.shape[0], b.shape[1],
                np.asarray(a.indptr, idx), np.asarray(a.indices, idx), np.asarray(a.data, np.float32),
                np.asarray(b.indptr, idx), np.asarray(b.indices, idx), np.asarray(b.data, np.float32),
                indptr, indices, data,
            )  # fmt: skip
            _sparsetools.csr_todense(a.shape[0], b.shape[1], indptr, indices, data, out)
        except (ImportError, AttributeError, TypeError, ValueError):
            out += (a @ b).toarray()


class CatalogHead:
    """The head's sparse weights, biases and weight; :meth:`bind` maps its emojis to a
    catalog's rows before it scores."""

    def __init__(
        self,
        emojis: Sequence[str],
        weights,
        bias: np.ndarray,
        weight: float,
        idf_digest: str,
        unseen: float = UNSEEN,
    ):
        from scipy.sparse import csr_matrix

        self.emojis = list(emojis)  # the head's columns
        self.weights = csr_matrix(weights, dtype=np.float32)  # (n-gram buckets, len(emojis))
        self.weights.sort_indices()
        self.bias = np.asarray(bias, np.float32)
        self.weight = float(weight)
        self.idf_digest = idf_digest
        self.unseen = float(unseen)
        self.columns: np.ndarray | None = None  # the head's emojis' catalog rows (bind)
        self.n_catalog = 0
        self._scaled = None  # (weight, the weights · weight laid over the catalog, the biases) for add_to

    @classmethod
    def from_dense(cls, emojis, w: np.ndarray, bias, weight: float, idf: np.ndarray, keep: int) -> CatalogHead:
        """From a dense (buckets, K) weight matrix over n-gram rows weighted by ``idf``,
        keeping the ``keep`` weights with the largest ``|w| · idf``: what a weight typically
        adds to a text's score (an n-gram's value in a row is proportional to its idf), so
        the everyday n-grams' many small weights go first."""
        from scipy.sparse import csr_matrix

        importance = np.abs(w) * np.asarray(idf, np.float32)[:, None]
        flat = importance.ravel()
        if keep < flat.size:
            cut = np.partition(flat, flat.size - keep)[flat.size - keep]
            w = np.where(importance >= cut, w, 0.0)
        return cls(emojis, csr_matrix(w.astype(np.float32)), bias, weight, idf_digest(idf))

    def bind(self, positions: dict[str, int], n_catalog: int) -> CatalogHead:
        """Map the head's emojis to the catalog's rows (an emoji outside it is dropped)."""
        keep = [j for j, e in enumerate(self.emojis) if e in positions]
        if len(keep) < len(self.emojis):
            self.weights = self.weights[:, keep].tocsr()
            self.bias = self.bias[keep]
            self.emojis = [self.emojis[j] for j in keep]
        self.columns = np.asarray([positions[e] for e in self.emojis], np.int64)
        self.n_catalog = n_catalog
        self._scaled = None  # laid over the catalog's columns: made again for these
        return self

    def raw(self, rows) -> np.ndarray:
        """(B, len(emojis)) head scores for n-gram rows (B × buckets, sparse)."""
        return (rows @ self.weights).toarray() + self.bias

    def scores(self, rows) -> np.ndarray:
        """(B, catalog): the head's scores, ``unseen`` for emojis it has no column for."""
        assert self.columns is not None, "bind the head to a catalog first"
        out = np.full((rows.shape[0], self.n_catalog), self.unseen, np.float32)
        out[:, self.columns] = self.raw(rows)
        return out

    def add_to(self, s: np.ndarray, rows, weight: float) -> None:
        """``s += weight · (scores(rows) − unseen)``, in place: the ranking of
        ``weight · scores`` (the same shift for every emoji), without a pass over the
        emojis the head does not know. The weights are kept scaled and laid over the
        catalog's columns, so the product comes out as wide as ``s`` and is added in one
        pass (picking the head's 653 columns out of ``s`` and writing them back cost a
        quarter of the step)."""
        assert self.columns is not None, "bind the head to a catalog first"
        if self._scaled is None or self._scaled[0] != weight:
            from scipy.sparse import csr_matrix

            w = self.weights
            wide = csr_matrix((w.data * np.float32(weight), self.columns[w.indices], w.indptr),
                              shape=(w.shape[0], self.n_catalog))  # fmt: skip
            bias = np.zeros(self.n_catalog, np.float32)
            bias[self.columns] = (self.bias - self.unseen) * weight
            self._scaled = (weight, SparseProduct(wide), bias)
        _, product, b = self._scaled
        product.add_into(s, rows)
        s += b

    def save(self, path: Path) -> None:
        w = self.weights.tocsc()  # one int8 scale per emoji (column)
        scale = np.zeros(w.shape[1], np.float32)
        for j in range(w.shape[1]):
            col = w.data[w.indptr[j] : w.indptr[j + 1]]
            scale[j] = max(float(np.abs(col).max()) if col.size else 0.0, 1e-12) / 127.0
        col_of = np.repeat(np.arange(w.shape[1]), np.diff(w.indptr))
        np.savez_compressed(
            path,
            emojis=np.array(self.emojis),
            data_q=np.round(w.data / scale[col_of]).astype(np.int8),
            scale=scale,
            indices=w.indices.astype(np.int32),
            indptr=w.indptr.astype(np.int32),
            shape=np.array(w.shape),
            bias=self.bias,
            weight=np.array(self.weight),
            unseen=np.array(self.unseen),
            idf_digest=np.array(self.idf_digest),
        )

    @classmethod
    def load(cls, path: Path) -> CatalogHead:
        from scipy.sparse import csc_matrix

        with np.load(path) as z:
            indptr = z["indptr"]
            col_of = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
            data = z["data_q"].astype(np.float32) * z["scale"][col_of]
            w = csc_matrix((data, z["indices"], indptr), shape=tuple(int(x) for x in z["shape"]))
            return cls(
                [str(e) for e in z["emojis"]],
                w.tocsr(),
                z["bias"],
                float(z["weight"]),
                str(z["idf_digest"]),
                float(z["unseen"]),
            )
