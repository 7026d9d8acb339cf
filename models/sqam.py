"""The Siamese question-answer model (SQAM): text question, emoji answer, cosine score.

Question tower: an idf-weighted bag of hashed n-grams (word uni/bigrams, character
3–5-grams; fastText style, L2-normalised like a TF-IDF vector) next to the mean of static
word vectors distilled from all-MiniLM-L6-v2 (``training.minilm``), → dropout → dense.
Answer tower: dense layers over the emoji's features (its 16-d VAE code and the MiniLM
embedding of its names and descriptions, standardised over the catalog). Both go through
one *shared* dense stack whose last layer is ``tanh``.

The score of emoji e for text t is ``scale · cos(q(t), a(e)) + bias(e)``: the cosine says
how well they fit, the learned per-emoji bias how often people use the emoji at all (an
emoji added after training gets the lowest bias any emoji has). The model trains against
the whole catalog at once: a softmax over every emoji's score, so every other emoji is a
negative, weighted by how close it comes (``loss="softmax"``); the source's triplet hinge
``max(0, m − cos⁺ + cos⁻)`` over every negative is kept as ``loss="hinge"``.

The towers are separate Keras models so that inference precomputes every catalog emoji's
answer vector once and runs only the question tower per message (``models.ranker``, in
NumPy).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import keras
import numpy as np
from keras import layers, ops


@dataclass
class SQAMConfig:
    ngram_dim: int = 96
    tower_dim: int = 256
    shared_dims: tuple[int, ...] = (256, 128)
    dropout: float = 0.3
    scale: float = 8.0  # cosine → logit: the softmax's inverse temperature
    use_words: bool = True
    use_ngrams: bool = True
    use_semantic: bool = True
    answer_offsets: bool = True  # a learned offset per catalog emoji next to its features
    loss: str = "softmax"  # or "hinge"
    margin: float = 0.2  # of the hinge
    label_smoothing: float = 0.1  # of the softmax

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> SQAMConfig:
        d = dict(d)
        d["shared_dims"] = tuple(d.get("shared_dims", cls.shared_dims))
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


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


def build_question_tower(
    word_vectors: np.ndarray, ngram_buckets: int, cfg: SQAMConfig, ngram_idf: np.ndarray
) -> keras.Model:
    words = keras.Input((None,), dtype="int32", name="word_ids")
    ngrams = keras.Input((None,), dtype="int32", name="ngram_ids")
    parts = []
    if cfg.use_ngrams:
        g = layers.Embedding(ngram_buckets, cfg.ngram_dim, name="ngram_embedding")(ngrams)
        parts.append(IdfPool(ngram_idf, name="ngram_pool")([g, ngrams]))
    if cfg.use_words:
        emb = layers.Embedding(
            word_vectors.shape[0],
            word_vectors.shape[1],
            embeddings_initializer=keras.initializers.Constant(word_vectors),
            trainable=False,
            name="word_embedding",
        )(words)
        parts.append(MaskedMean(name="word_mean")([emb, words]))
    if not parts:
        raise ValueError("the question tower needs n-grams, words or both")
    x = layers.Concatenate(name="question_concat")(parts) if len(parts) > 1 else parts[0]
    x = layers.Dropout(cfg.dropout)(x)
    x = layers.Dense(cfg.tower_dim, activation="tanh", name="question_dense")(x)
    return keras.Model([words, ngrams], x, name="question_tower")


def build_answer_tower(feature_dim: int, cfg: SQAMConfig) -> keras.Model:
    feats = keras.Input((feature_dim,), name="emoji_features")
    x = layers.Dense(128, activation="tanh", name="answer_dense_0")(feats)
    x = layers.Dense(cfg.tower_dim, activation="tanh", name="answer_dense_1")(x)
    return keras.Model(feats, x, name="answer_tower")


def build_shared_stack(cfg: SQAMConfig) -> keras.Model:
    """Dense layers both towers go through; all tanh: with ReLU every output sits in the
    positive orthant and all cosines start near 1 (measured: the hinge loss collapsed)."""
    x_in = keras.Input((cfg.tower_dim,), name="tower_output")
    x = x_in
    for i, d in enumerate(cfg.shared_dims):
        x = layers.Dense(d, activation="tanh", name=f"shared_dense_{i}")(x)
    return keras.Model(x_in, x, name="shared_stack")


def l2_normalize(x, axis=-1):
    return x / ops.maximum(ops.norm(x, axis=axis, keepdims=True), 1e-8)


def triplet_hinge(pos_cos, neg_cos, neg_mask, margin: float = 0.2):
    """Hinge ``max(0, m − cos⁺ + cos⁻)`` averaged over each example's negatives.

    pos_cos: (B,), neg_cos: (B, C), neg_mask: (B, C) float weights (0 = not a negative).
    Returns a (B,) loss per example.
    """
    hinge = ops.relu(margin - ops.expand_dims(pos_cos, -1) + neg_cos) * neg_mask
    return ops.sum(hinge, axis=-1) / ops.maximum(ops.sum(neg_mask, axis=-1), 1e-6)


class SQAM(keras.Model):
    """Question tower, answer tower, shared stack and per-emoji bias; ``call`` scores a
    batch of texts against the whole catalog (``answer_features``, one row per emoji).

    Trained as keras-io trains its models: ``fit`` on ((word ids, n-gram ids), target
    distribution over the catalog, example weight), with ``train_step`` and ``test_step``
    below and their metric trackers."""

    def __init__(
        self,
        word_vectors: np.ndarray,
        ngram_buckets: int,
        answer_features: np.ndarray,
        cfg: SQAMConfig,
        ngram_idf: np.ndarray,
        prior: np.ndarray | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.cfg = cfg
        self.question_tower = build_question_tower(word_vectors, ngram_buckets, cfg, ngram_idf)
        self.answer_tower = build_answer_tower(answer_features.shape[1], cfg)
        self.shared = build_shared_stack(cfg)
        self.answer_features = ops.convert_to_tensor(np.asarray(answer_features, np.float32))
        n = answer_features.shape[0]
        init = np.zeros(n, np.float32) if prior is None else np.asarray(prior, np.float32)
        self.bias = self.add_weight(
            shape=(n,), initializer=keras.initializers.Constant(init), trainable=True, name="emoji_bias"
        )
        # A learned offset per catalog emoji, added to its answer-tower output: emojis that
        # look and read alike (😍 🥰 😘) can still sit apart where tweets tell them apart. It
        # starts at zero and stays zero for an emoji without training examples, whose answer
        # is then its picture and descriptions alone.
        self.answer_offset = self.add_weight(
            shape=(n, cfg.tower_dim), initializer="zeros", trainable=cfg.answer_offsets, name="answer_offset"
        )
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.top5_tracker = keras.metrics.Mean(name="top5")

    @property
    def metrics(self):
        return [self.loss_tracker, self.top5_tracker]

    def encode_questions(self, inputs, training=False):
        return l2_normalize(self.shared(self.question_tower(inputs, training=training), training=training))

    def encode_answers(self, features=None, training=False):
        """Answer vectors of the catalog, or of new emojis' ``features`` (no offset: they
        had no training examples)."""
        if features is None:
            a = self.answer_tower(self.answer_features, training=training) + self.answer_offset
        else:
            a = self.answer_tower(features, training=training)
        return l2_normalize(self.shared(a, training=training))

    def cosines(self, inputs, training=False):
        q = self.encode_questions(inputs, training=training)
        return ops.matmul(q, ops.transpose(self.encode_answers(training=training)))

    def call(self, inputs, training=False):
        return self.cfg.scale * self.cosines(inputs, training=training) + self.bias

    def _loss(self, target, cos, weight):
        """``target`` (B, catalog): each row's gold mass; −1 marks an emoji the row says
        nothing of (a TweetEval tweet chose among its 20 emojis only), which is neither a
        positive nor a negative there."""
        among = ops.cast(target >= 0, cos.dtype)
        target = ops.maximum(target, 0.0)
        if self.cfg.loss == "hinge":
            positive = ops.cast(target > 0, cos.dtype)
            pos_cos = ops.sum(cos * target, axis=-1) / ops.maximum(ops.sum(target, axis=-1), 1e-6)
            per = triplet_hinge(pos_cos, cos, among - positive, self.cfg.margin)
        else:  # cross-entropy over the row's emojis, its target smoothed over them
            logits = ops.where(among > 0, self.cfg.scale * cos + self.bias, -1e9)
            eps = self.cfg.label_smoothing
            smooth = (1.0 - eps) * target + eps * among / ops.sum(among, axis=-1, keepdims=True)
            per = -ops.sum(smooth * ops.log_softmax(logits, axis=-1), axis=-1)
        return ops.sum(per * weight) / ops.maximum(ops.sum(weight), 1e-6)

    def _track(self, loss, target, cos):
        logits = self.cfg.scale * cos + self.bias
        top5 = ops.top_k(logits, 5)[1]
        hit = ops.max(ops.take_along_axis(target, top5, axis=1), axis=1) > 0
        self.loss_tracker.update_state(loss)
        self.top5_tracker.update_state(ops.cast(hit, "float32"))
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data):
        import tensorflow as tf

        inputs, target, weight = data
        with tf.GradientTape() as tape:
            cos = self.cosines(inputs, training=True)
            loss = self._loss(target, cos, weight)
        grads = tape.gradient(loss, self.trainable_weights)
        # (the hinge leaves the bias without a gradient: it does not read it)
        pairs = [(g, v) for g, v in zip(grads, self.trainable_weights, strict=True) if g is not None]
        self.optimizer.apply_gradients(pairs)
        return self._track(loss, target, cos)

    def test_step(self, data):
        inputs, target, weight = data
        cos = self.cosines(inputs, training=False)
        return self._track(self._loss(target, cos, weight), target, cos)


class ShippedSQAM(keras.Model):
    """The SQAM as it ships, trainable again: what `emojibot retrain` fine-tunes.

    Built from an artifact folder's NumPy layout (``models.ranker.NumpyQuestionEncoder``'s
    question weights, the catalog's answer vectors and per-emoji bias): the question tower
    and shared stack as Keras layers with those weights, the answer vectors and the bias as
    trainable variables (the answer tower ran at training time; its outputs are what ships).
    The word vectors stay frozen, as in training.

    A batch is ((word ids, n-gram ids[, offsets]), (target, negatives[, ranked]), weight):
    ``offsets`` (B, catalog) are the fixed terms the ranker adds to the SQAM's score for a
    text (the emoji names and the catalog head), so that feedback trains the SQAM on what
    the whole ranking answers, not on the SQAM alone; ``target`` a
    distribution over the catalog (the emojis people added; all zero when nobody added
    one), ``negatives`` a 0/1 mask of emojis the bot suggested and nobody endorsed. The loss
    is the softmax cross-entropy of the target (every other catalog emoji a sampled-free
    negative) plus the unlikelihood ``−log(1 − p(e))`` of each explicit negative.

    ``mix`` (the ranker's popularity mix, ``models.prior``: popularity over the catalog,
    temperature, weight, sureness): ``p`` of the rows flagged in ``ranked`` (B,) is then the
    mixture the bot ranks by, ``(1 − w) · softmax(logits / temperature) + w · popularity``
    with ``w`` the row's weight (``weight · (1 − max softmax) ** sureness``, held constant
    in the gradient), so feedback on an emoji the mix already lifts (😂 ❤️) moves the SQAM
    less than feedback on one it does not (🍕); the other rows (the original tweets,
    whose targets are the SQAM's own softmax) keep the plain softmax.
    """

    def __init__(
        self,
        weights: dict[str, np.ndarray],
        answers: np.ndarray,
        bias: np.ndarray,
        scale: float,
        dropout: float = 0.1,
        unlikelihood: float = 1.0,
        train_ngrams: bool = False,
        mix: tuple[np.ndarray, float, float, float] | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        from models.ranker import dequantize_rows

        self.scale, self.unlikelihood = float(scale), float(unlikelihood)
        self.mix = None
        if mix is not None and mix[2] > 0:
            popularity, temperature, weight, sureness = mix
            self.mix = (np.log(np.asarray(popularity, np.float32)), float(temperature), float(weight), float(sureness))
        self.word_table = weights.get("word_table_q"), weights.get("word_table_scale")
        self.has_ngrams = "ngram_table_q" in weights
        self.has_words = "word_table_q" in weights
        const = keras.initializers.Constant
        if self.has_ngrams:
            table = dequantize_rows(weights["ngram_table_q"], weights["ngram_table_scale"])
            self.ngram_embedding = layers.Embedding(
                *table.shape, embeddings_initializer=const(table), trainable=train_ngrams, name="ngram_embedding"
            )
            self.ngram_pool = IdfPool(np.asarray(weights["ngram_idf"], np.float32), name="ngram_pool")
        if self.has_words:
            words = dequantize_rows(weights["word_table_q"], weights["word_table_scale"])
            self.word_embedding = layers.Embedding(
                *words.shape, embeddings_initializer=const(words), trainable=False, name="word_embedding"
            )
            self.word_mean = MaskedMean(name="word_mean")
        self.dropout = layers.Dropout(dropout)
        w, b = weights["question_dense_w"], weights["question_dense_b"]
        self.question_dense = layers.Dense(
            w.shape[1], activation="tanh", kernel_initializer=const(w), bias_initializer=const(b), name="question_dense"
        )
        self.shared_layers = []
        n_shared = sum(1 for k in weights if k.startswith("shared_") and k.endswith("_w"))
        for i in range(n_shared):
            w, b = weights[f"shared_{i}_w"], weights[f"shared_{i}_b"]
            self.shared_layers.append(
                layers.Dense(
                    w.shape[1], activation="tanh", kernel_initializer=const(w), bias_initializer=const(b),
                    name=f"shared_dense_{i}",
                )
            )  # fmt: skip
        self.answers = self.add_weight(
            shape=answers.shape, initializer=const(np.asarray(answers, np.float32)), name="answers"
        )
        self.bias = self.add_weight(
            shape=bias.shape, initializer=const(np.asarray(bias, np.float32)), name="emoji_bias"
        )
        self.loss_tracker = keras.metrics.Mean(name="loss")

    @property
    def metrics(self):
        return [self.loss_tracker]

    def encode_questions(self, inputs, training=False):
        words, ngrams = inputs[0], inputs[1]
        parts = []
        if self.has_ngrams:
            parts.append(self.ngram_pool([self.ngram_embedding(ngrams), ngrams]))
        if self.has_words:
            parts.append(self.word_mean([self.word_embedding(words), words]))
        x = ops.concatenate(parts, axis=-1) if len(parts) > 1 else parts[0]
        x = self.question_dense(self.dropout(x, training=training))
        for layer in self.shared_layers:
            x = layer(x)
        return l2_normalize(x)

    def call(self, inputs, training=False):
        q = self.encode_questions(inputs, training=training)
        logits = self.scale * ops.matmul(q, ops.transpose(l2_normalize(self.answers))) + self.bias
        return logits + inputs[2] if len(inputs) > 2 else logits

    def _log_p(self, logits, ranked):
        """Per row, the log-probabilities the loss reads: the mixture for ``ranked`` rows
        (when there is a mix), the softmax for the others."""
        log_p = ops.log_softmax(logits, axis=-1)
        if self.mix is None or ranked is None:
            return log_p
        log_pop, temperature, weight, sureness = self.mix
        log_q = ops.log_softmax(logits / temperature, axis=-1)
        w = ops.full_like(log_q[:, :1], weight)
        if sureness:  # the row's weight, as models.prior gives it: a constant of the loss
            top = ops.stop_gradient(ops.exp(ops.max(log_q, axis=-1, keepdims=True)))
            w = ops.maximum(weight * (1.0 - top) ** sureness, 1e-12)
        mixed = ops.logaddexp(ops.log1p(-w) + log_q, ops.log(w) + log_pop)
        return ops.where(ops.expand_dims(ranked, -1) > 0, mixed, log_p)

    def _loss(self, logits, target, negatives, ranked=None, *, weight):
        has_target = ops.cast(ops.sum(target, axis=-1) > 0, logits.dtype)
        log_p = self._log_p(logits, ranked)
        ce = -ops.sum(target * log_p, axis=-1) * has_target
        p = ops.exp(log_p)
        ul = -ops.sum(negatives * ops.log(ops.maximum(1.0 - p, 1e-6)), axis=-1)
        per = ce + self.unlikelihood * ul
        return ops.sum(per * weight) / ops.maximum(ops.sum(weight), 1e-6)

    def train_step(self, data):
        import tensorflow as tf

        inputs, targets, weight = data
        with tf.GradientTape() as tape:
            loss = self._loss(self(inputs, training=True), *targets, weight=weight)
        grads = tape.gradient(loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights, strict=True))
        self.loss_tracker.update_state(loss)
        return {"loss": self.loss_tracker.result()}

    def test_step(self, data):
        inputs, targets, weight = data
        self.loss_tracker.update_state(self._loss(self(inputs), *targets, weight=weight))
        return {"loss": self.loss_tracker.result()}

    def export(self) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        """(question weights in the NumPy layout, unit answer vectors, bias): what ships.
        The n-gram table goes back to int8 rows with a scale each; the word table is the
        one it was built from."""
        from models.heads import quantize_columns

        w: dict[str, np.ndarray] = {}
        if self.has_words:
            w["word_table_q"], w["word_table_scale"] = self.word_table
        if self.has_ngrams:
            q, s = quantize_columns(np.asarray(self.ngram_embedding.embeddings.numpy()).T)
            w["ngram_table_q"], w["ngram_table_scale"] = q.T.copy(), s
            w["ngram_idf"] = np.asarray(self.ngram_pool.idf.numpy(), np.float32)
        w["question_dense_w"], w["question_dense_b"] = (np.asarray(v) for v in self.question_dense.get_weights())
        for i, layer in enumerate(self.shared_layers):
            w[f"shared_{i}_w"], w[f"shared_{i}_b"] = (np.asarray(v) for v in layer.get_weights())
        a = np.asarray(self.answers.numpy(), np.float32)
        a /= np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-8)
        return w, a, np.asarray(self.bias.numpy(), np.float32)
