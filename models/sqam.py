"""The Siamese question-answer model (SQAM): text question, emoji answer, cosine score.

Question tower: frozen GloVe word vectors → bidirectional LSTM → masked max-pool, next to
an idf-weighted bag of hashed n-grams (fastText style), → dense. Answer tower: dense layers
over the emoji's features (its 16-d VAE code, optionally with a 50-d semantic vector: the
mean GloVe vector of its name and descriptions). Both go through one *shared* dense stack
whose last layer is ``tanh``; the score is the cosine of the two outputs.

The towers are separate Keras models so that inference can precompute every catalog
emoji's answer vector once and run only the question tower per message.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import keras
import numpy as np
from keras import layers, ops


@dataclass
class SQAMConfig:
    lstm_units: int = 96
    ngram_dim: int = 96
    tower_dim: int = 256
    shared_dims: tuple[int, ...] = (256, 128)
    dropout: float = 0.5
    # Zero-centred activations: with ReLU every tower output sits in the positive orthant,
    # all cosines start near 1 and the hinge loss barely moves them (measured: collapse).
    activation: str = "tanh"
    use_semantic: bool = True
    use_ngrams: bool = True
    # "idf": n-gram embeddings summed with inverse-document-frequency weights and
    # L2-normalised, as a TF-IDF vector would weigh them; "mean": plain average.
    ngram_pooling: str = "idf"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> SQAMConfig:
        d = dict(d)
        d["shared_dims"] = tuple(d.get("shared_dims", cls.shared_dims))
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


class MaskedMaxPool(layers.Layer):
    """Max over time of the positions that are not padding."""

    def call(self, x, mask=None):
        if mask is not None:
            x = ops.where(ops.expand_dims(mask, -1), x, ops.full_like(x, -1e9))
        return ops.max(x, axis=1)

    def compute_mask(self, inputs, mask=None):
        return None


class MaskedMean(layers.Layer):
    """Mean of the embeddings of non-padding ids (id 0 is padding)."""

    def call(self, inputs):
        emb, ids = inputs
        m = ops.cast(ops.expand_dims(ops.not_equal(ids, 0), -1), emb.dtype)
        return ops.sum(emb * m, axis=1) / ops.maximum(ops.sum(m, axis=1), 1.0)


class IdfPool(layers.Layer):
    """Σ idf(id)·e(id) / ‖(idf(id))‖₂ over the non-padding ids of each row."""

    def __init__(self, idf: np.ndarray, **kwargs):
        super().__init__(**kwargs)
        self.idf = self.add_weight(
            shape=(len(idf),), initializer=keras.initializers.Constant(idf), trainable=False, name="idf"
        )

    def call(self, inputs):
        emb, ids = inputs
        w = ops.take(self.idf, ids) * ops.cast(ops.not_equal(ids, 0), emb.dtype)
        norm = ops.sqrt(ops.maximum(ops.sum(w * w, axis=1, keepdims=True), 1e-12))
        return ops.sum(emb * ops.expand_dims(w / norm, -1), axis=1)


def word_bilstm_max_pool(words, word_vectors: np.ndarray, units: int):
    """Frozen word vectors → BiLSTM → masked max-pool over ``words`` (int ids, 0 = padding).

    The layer names are what the NumPy exports read (``bilstm``); the SQAM question tower
    and the heads' sequence classifier share this branch."""
    emb = layers.Embedding(
        word_vectors.shape[0],
        word_vectors.shape[1],
        embeddings_initializer=keras.initializers.Constant(word_vectors),
        trainable=False,
        mask_zero=True,
        name="word_embedding",
    )(words)
    seq = layers.Bidirectional(layers.LSTM(units, return_sequences=True), name="bilstm")(emb)
    return MaskedMaxPool(name="max_pool")(seq)


def build_question_tower(
    word_vectors: np.ndarray, ngram_buckets: int, cfg: SQAMConfig, ngram_idf: np.ndarray | None = None
) -> keras.Model:
    words = keras.Input((None,), dtype="int32", name="word_ids")
    ngrams = keras.Input((None,), dtype="int32", name="ngram_ids")
    parts = [word_bilstm_max_pool(words, word_vectors, cfg.lstm_units)]
    if cfg.use_ngrams:
        g = layers.Embedding(ngram_buckets, cfg.ngram_dim, name="ngram_embedding")(ngrams)
        if cfg.ngram_pooling == "idf":
            idf = ngram_idf if ngram_idf is not None else np.ones(ngram_buckets, np.float32)
            parts.append(IdfPool(idf, name="ngram_pool")([g, ngrams]))
        else:
            parts.append(MaskedMean(name="ngram_pool")([g, ngrams]))
    x = layers.Concatenate(name="question_concat")(parts) if len(parts) > 1 else parts[0]
    x = layers.Dropout(cfg.dropout)(x)
    x = layers.Dense(cfg.tower_dim, activation=cfg.activation, name="question_dense")(x)
    return keras.Model([words, ngrams], x, name="question_tower")


def build_answer_tower(feature_dim: int, cfg: SQAMConfig) -> keras.Model:
    feats = keras.Input((feature_dim,), name="emoji_features")
    x = layers.Dense(128, activation=cfg.activation, name="answer_dense_0")(feats)
    x = layers.Dense(cfg.tower_dim, activation=cfg.activation, name="answer_dense_1")(x)
    return keras.Model(feats, x, name="answer_tower")


def build_shared_stack(cfg: SQAMConfig) -> keras.Model:
    x_in = keras.Input((cfg.tower_dim,), name="tower_output")
    x = x_in
    for i, d in enumerate(cfg.shared_dims):
        last = i == len(cfg.shared_dims) - 1
        x = layers.Dense(d, activation="tanh" if last else cfg.activation, name=f"shared_dense_{i}")(x)
    return keras.Model(x_in, x, name="shared_stack")


class SQAM:
    """The three parts and the two full encoders that share the stack."""

    def __init__(
        self,
        word_vectors: np.ndarray,
        ngram_buckets: int,
        feature_dim: int,
        cfg: SQAMConfig,
        ngram_idf: np.ndarray | None = None,
    ):
        self.cfg = cfg
        self.question_tower = build_question_tower(word_vectors, ngram_buckets, cfg, ngram_idf)
        self.answer_tower = build_answer_tower(feature_dim, cfg)
        self.shared = build_shared_stack(cfg)
        q_in = self.question_tower.inputs
        self.question_encoder = keras.Model(q_in, self.shared(self.question_tower(q_in)), name="question")
        a_in = keras.Input((feature_dim,), name="emoji_features")
        self.answer_encoder = keras.Model(a_in, self.shared(self.answer_tower(a_in)), name="answer")

    @property
    def trainable_weights(self):
        seen, out = set(), []
        for m in (self.question_tower, self.answer_tower, self.shared):
            for w in m.trainable_weights:
                if id(w) not in seen:
                    seen.add(id(w))
                    out.append(w)
        return out


def l2_normalize(x, axis=-1):
    return x / ops.maximum(ops.norm(x, axis=axis, keepdims=True), 1e-8)


def triplet_hinge(pos_cos, neg_cos, neg_mask, margin: float = 0.2, hard_weight: float = 1.0):
    """Hinge ``max(0, m − cos⁺ + cos⁻)`` averaged over each example's allowed negatives,
    plus the hardest negative's hinge (weighted by ``hard_weight``).

    pos_cos: (B,), neg_cos: (B, C), neg_mask: (B, C) float weights (0 = not a negative).
    Returns a (B,) loss per example.
    """
    hinge = ops.relu(margin - ops.expand_dims(pos_cos, -1) + neg_cos) * neg_mask
    mean = ops.sum(hinge, axis=-1) / ops.maximum(ops.sum(neg_mask, axis=-1), 1e-6)
    hardest = ops.max(hinge, axis=-1)
    return mean + hard_weight * hardest
