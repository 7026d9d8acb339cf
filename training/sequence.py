"""The sequence part of a supervised head: a small BiLSTM classifier over frozen word vectors.

Keras trains it; :class:`models.heads.SequenceHead` runs it in NumPy at inference, from
the weights :func:`export_sequence` writes (``tests/test_heads.py`` checks that the two
agree). It reads the SQAM's own vocabulary and word vectors, so a message is tokenised
once for both.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class SequenceSettings:
    lstm_units: int = 64
    dropout: float = 0.4
    epochs: int = 6  # 5-fold CV on the airline training tweets: accuracy 0.790 (10 epochs: 0.790)
    batch_size: int = 64
    learning_rate: float = 2e-3
    seed: int = 13


def word_bilstm_max_pool(words, word_vectors: np.ndarray, units: int):
    """Frozen word vectors → BiLSTM → masked max-pool over ``words`` (int ids, 0 = padding).
    The layer name ``bilstm`` is what :func:`export_sequence` reads."""
    import keras
    from keras import layers, ops

    class MaskedMaxPool(layers.Layer):
        def call(self, x, mask=None):
            if mask is not None:
                x = ops.where(ops.expand_dims(mask, -1), x, ops.full_like(x, -1e9))
            return ops.max(x, axis=1)

        def compute_mask(self, inputs, mask=None):
            return None

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


def build_sequence_classifier(word_vectors: np.ndarray, n_classes: int, s: SequenceSettings):
    import keras
    from keras import layers

    words = keras.Input((None,), dtype="int32", name="word_ids")
    x = word_bilstm_max_pool(words, word_vectors, s.lstm_units)
    x = layers.Dropout(s.dropout)(x)
    logits = layers.Dense(n_classes, name="logits")(x)
    model = keras.Model(words, logits, name="sequence_head")
    model.compile(
        optimizer=keras.optimizers.Adam(s.learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def _trimmed(word_ids: np.ndarray) -> np.ndarray:
    """Rows cut after their longest row's last word: the LSTM steps through every column,
    padding too (masked, so the result is the same), and tweets padded to the longest of
    all (64 words for the airline tweets, 21 on average) cost it three times the work."""
    width = int((word_ids != 0).sum(axis=1).max()) if len(word_ids) else 0
    return word_ids[:, : max(width, 1)]


class TrimmedBatches:
    """Shuffled batches of (word ids, labels), each cut to its own longest tweet (training
    on the airline tweets padded to the longest of all took twice as long). Each pass
    over it is one epoch, in a new order."""

    def __init__(self, word_ids: np.ndarray, labels: np.ndarray, batch_size: int, seed: int):
        self.word_ids, self.labels, self.batch_size = word_ids, np.asarray(labels), batch_size
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return int(np.ceil(len(self.word_ids) / self.batch_size))

    def __iter__(self):
        order = self.rng.permutation(len(self.word_ids))
        for i in range(len(self)):
            idx = order[i * self.batch_size : (i + 1) * self.batch_size]
            yield _trimmed(self.word_ids[idx]), self.labels[idx]

    def dataset(self):
        """The batches as a ``tf.data.Dataset`` whose width varies from batch to batch (a
        ``keras.utils.PyDataset`` fixes it from the first batches it reads)."""
        import tensorflow as tf

        spec = (
            tf.TensorSpec((None, None), tf.as_dtype(self.word_ids.dtype)),
            tf.TensorSpec((None,), tf.as_dtype(self.labels.dtype)),
        )
        ds = tf.data.Dataset.from_generator(lambda: iter(self), output_signature=spec)
        return ds.apply(tf.data.experimental.assert_cardinality(len(self)))  # Keras counts the steps


def fit_sequence(
    word_vectors: np.ndarray, word_ids: np.ndarray, labels: np.ndarray, n_classes: int, s: SequenceSettings
):
    """A trained classifier on (N, T) word ids (0 = padding, at the end; every row has a word)."""
    import keras

    keras.utils.set_random_seed(s.seed)
    model = build_sequence_classifier(word_vectors, n_classes, s)
    batches = TrimmedBatches(word_ids, labels, s.batch_size, s.seed)
    history = model.fit(batches.dataset(), epochs=s.epochs, shuffle=False, verbose=0)
    assert len(history.history["loss"]) == s.epochs
    return model


def predict_sequence(model, word_ids: np.ndarray, s: SequenceSettings) -> np.ndarray:
    # Called eagerly: `model.predict` would trace a new graph for every fold's model (and
    # TensorFlow warns about the retracing).
    parts = [np.asarray(model(_trimmed(word_ids[i : i + 512]), training=False)) for i in range(0, len(word_ids), 512)]
    return np.concatenate(parts).astype(np.float32) if parts else np.zeros((0, model.output_shape[-1]), np.float32)


def export_sequence(model, scale: float = 1.0) -> dict[str, np.ndarray]:
    """Weights in the layout of :class:`models.heads.SequenceHead`, logits times ``scale``."""
    from models.recurrent import export_bilstm

    out = export_bilstm(model.get_layer("bilstm"))
    w, b = model.get_layer("logits").get_weights()
    out["dense_w"], out["dense_b"] = w * scale, b * scale
    return {k: np.asarray(v, np.float32) for k, v in out.items()}
