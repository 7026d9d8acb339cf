import numpy as np
import pytest

from models.ranker import NumpyQuestionEncoder
from models.sqam import SQAM, SQAMConfig, triplet_hinge
from models.text import NGRAM_BUCKETS, TextFeaturizer, Vocabulary


def test_triplet_hinge_values():
    pos = np.array([0.9, 0.1], np.float32)
    neg = np.array([[0.5, 0.8], [0.0, 0.3]], np.float32)
    mask = np.array([[1.0, 1.0], [1.0, 0.0]], np.float32)
    # row 0: max(0, .2-.9+.5)=0, max(0,.2-.9+.8)=.1 -> mean .05, hardest .1
    # row 1: max(0, .2-.1+0)=.1 (the .3 column is masked) -> mean .1, hardest .1
    out = np.asarray(triplet_hinge(pos, neg, mask, margin=0.2, hard_weight=1.0))
    np.testing.assert_allclose(out, [0.15, 0.2], atol=1e-6)


def test_zero_shot_report_against_chance():
    from training.sqam import zero_shot_report

    # 4 candidates; labels 1 and 3 are "held out"; the scores put label 3 always first
    scores = np.array([[0.1, 0.2, 0.0, 0.9], [0.5, 0.1, 0.0, 0.3], [0.0, 0.0, 0.0, 1.0]])
    labels = np.array([3, 1, 3])
    rep = zero_shot_report(scores, labels, (1, 3), ["a", "b", "c", "d"])
    assert rep["val_tweets"] == 3
    assert rep["top1_accuracy"] == 2 / 3  # row 1's label 1 is beaten by 0 and 3
    assert rep["mean_rank"] == (1 + 3 + 1) / 3
    assert rep["among_held_out"]["top1_accuracy"] == 2 / 3  # row 1: 0.3 (d) > 0.1 (b)
    assert rep["among_held_out"]["per_emoji_top1"] == {"b": 0.0, "d": 1.0}
    assert rep["chance_mean_rank"] == 2.5


def test_triplet_hinge_is_zero_when_margin_met():
    out = np.asarray(triplet_hinge(np.array([1.0]), np.array([[0.1, -0.5]]), np.ones((1, 2)), margin=0.2))
    assert out[0] == 0.0


@pytest.mark.parametrize(
    "use_ngrams, activation, pooling",
    [(True, "tanh", "idf"), (True, "tanh", "mean"), (False, "tanh", "idf"), (True, "relu", "idf")],
)
def test_numpy_question_encoder_matches_keras(use_ngrams, activation, pooling):
    import keras

    from training.sqam import export_question_weights

    keras.utils.set_random_seed(3)
    rng = np.random.default_rng(3)
    letters = "abcdefghij"
    words = ["<pad>", "<oov>"] + [f"w{a}{b}" for a in letters for b in letters[:6]]
    vectors = rng.normal(size=(len(words), 8)).astype(np.float16).astype(np.float32)
    cfg = SQAMConfig(
        lstm_units=8, ngram_dim=4, tower_dim=16, shared_dims=(16, 8), use_ngrams=use_ngrams, activation=activation
    )
    cfg.ngram_pooling = pooling
    idf = rng.uniform(1.0, 5.0, NGRAM_BUCKETS).astype(np.float32)
    sqam = SQAM(vectors, NGRAM_BUCKETS, feature_dim=5, cfg=cfg, ngram_idf=idf)
    if use_ngrams:  # what ships is int8 rows with a scale each; make Keras hold the same values
        from models.heads import quantize_columns

        layer = sqam.question_tower.get_layer("ngram_embedding")
        q, scale = quantize_columns(rng.normal(size=layer.get_weights()[0].shape).T)
        layer.set_weights([(q.astype(np.float32) * scale).T])
    feat = TextFeaturizer(Vocabulary(words))
    texts = ["wab wac wad", "wbe", "wca wcb wcc wcd wce wcf wda wdb wdc unknownword", "wad wad"]
    batch = feat.featurize(texts)
    expected = np.array(sqam.question_encoder([batch.word_ids, batch.ngram_ids], training=False))
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    assert (batch.word_ids > 1).sum() == 15  # the words are in the vocabulary
    got = NumpyQuestionEncoder(export_question_weights(sqam, vectors)).encode(batch)
    np.testing.assert_allclose(got, expected, atol=2e-5)
    # Padding must not change a text's vector: encode each text alone.
    for i, t in enumerate(texts):
        alone = NumpyQuestionEncoder(export_question_weights(sqam, vectors)).encode(feat.featurize([t]))
        np.testing.assert_allclose(alone[0], got[i], atol=2e-5)
