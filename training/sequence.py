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


def fit_sequence(
    word_vectors: np.ndarray, word_ids: np.ndarray, labels: np.ndarray, n_classes: int, s: SequenceSettings
):
    """A trained classifier on (N, T) word ids (0 = padding; every row has a word)."""
    import keras

    keras.utils.set_random_seed(s.seed)
    model = build_sequence_classifier(word_vectors, n_classes, s)
    model.fit(word_ids, labels, batch_size=s.batch_size, epochs=s.epochs, verbose=0)
    return model


def predict_sequence(model, word_ids: np.ndarray, s: SequenceSettings) -> np.ndarray:
    # Called eagerly: `model.predict` would trace a new graph for every fold's model (and
    # TensorFlow warns about the retracing).
    parts = [np.asarray(model(word_ids[i : i + 512], training=False)) for i in range(0, len(word_ids), 512)]
    return np.concatenate(parts).astype(np.float32) if parts else np.zeros((0, model.output_shape[-1]), np.float32)


def export_sequence(model, scale: float = 1.0) -> dict[str, np.ndarray]:
    """Weights in the layout of :class:`models.heads.SequenceHead`, logits times ``scale``."""
    from models.recurrent import export_bilstm

    out = export_bilstm(model.get_layer("bilstm"))
    w, b = model.get_layer("logits").get_weights()
    out["dense_w"], out["dense_b"] = w * scale, b * scale
    return {k: np.asarray(v, np.float32) for k, v in out.items()}
