"""The NumPy all-MiniLM-L6-v2 that training distils word vectors from (real weights)."""

import numpy as np
import pytest

from models.minilm import MiniLM
from training.minilm import static_word_vectors


@pytest.fixture(scope="module")
def encoder():
    return MiniLM()


def test_sentence_embeddings_are_unit_vectors_that_read_meaning(encoder):
    e = encoder.encode(["a cat sits on the mat", "a kitten is resting on a rug", "the stock market crashed today"])
    assert e.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    assert e[0] @ e[1] > 0.5 > e[0] @ e[2] + 0.3  # paraphrase close, unrelated far


def test_batching_and_padding_do_not_change_an_embedding(encoder):
    texts = ["pizza", "my flight got cancelled and I am stuck at the airport", "snow"]
    together = encoder.encode(texts, batch=2)
    alone = np.stack([encoder.encode([t])[0] for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_static_word_vectors(encoder):
    words = ["<pad>", "<oov>", "<url>", "pizza", "pasta", "airport", "flight", "snow"]
    v = static_word_vectors(words, 4, encoder)
    assert v.shape == (len(words), 4) and v.dtype == np.float32
    assert not v[:2].any()  # padding and unknown words are zero
    assert np.isfinite(v).all() and np.abs(v[2:]).sum(axis=1).min() > 0


def test_the_sentence_cache_reuses_vectors_and_adds_the_missing(encoder, tmp_path):
    from training.minilm import encode_cached

    cache = tmp_path / "sentences.npz"
    texts = ["good morning everyone", "lakers lost again tonight", "good morning everyone"]
    first, encoded = encode_cached(texts, cache, encoder)
    assert encoded == 2 and cache.exists()  # the repeated text is encoded once
    np.testing.assert_allclose(first, encoder.encode(texts), atol=2e-3)  # kept as float16
    again, encoded = encode_cached(["thanks for the help!", *texts], cache, encoder)
    assert encoded == 1
    np.testing.assert_array_equal(again[1:], first)  # the cached ones come back as they were
    _, encoded = encode_cached(texts, None, encoder)  # no cache: everything encoded
    assert encoded == 2


def test_an_unreadable_sentence_cache_is_rewritten_not_fatal(encoder, tmp_path, capsys):
    from training.minilm import encode_cached

    cache = tmp_path / "sentences.npz"
    cache.write_bytes(b"not an npz file")
    vectors, encoded = encode_cached(["good morning everyone"], cache, encoder)
    assert encoded == 1 and vectors.shape == (1, 384)
    assert "unreadable sentence cache" in capsys.readouterr().err
    _, encoded = encode_cached(["good morning everyone"], cache, encoder)
    assert encoded == 0  # rewritten with the vector
