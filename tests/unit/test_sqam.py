import numpy as np
import pytest

from models.ranker import NumpyQuestionEncoder, dequantize_rows
from models.sqam import SQAM, SQAMConfig, triplet_hinge
from models.text import NGRAM_BUCKETS, TextFeaturizer, Vocabulary


def test_triplet_hinge_values():
    pos = np.array([0.9, 0.1], np.float32)
    neg = np.array([[0.5, 0.8], [0.0, 0.3]], np.float32)
    mask = np.array([[1.0, 1.0], [1.0, 0.0]], np.float32)
    # row 0: max(0, .2-.9+.5)=0, max(0,.2-.9+.8)=.1 -> mean .05
    # row 1: max(0, .2-.1+0)=.1 (the .3 column is masked) -> .1
    out = np.asarray(triplet_hinge(pos, neg, mask, margin=0.2))
    np.testing.assert_allclose(out, [0.05, 0.1], atol=1e-6)


def test_triplet_hinge_is_zero_when_margin_met():
    out = np.asarray(triplet_hinge(np.array([1.0]), np.array([[0.1, -0.5]]), np.ones((1, 2)), margin=0.2))
    assert out[0] == 0.0


def _tiny_sqam(use_ngrams=True, use_words=True, loss="softmax", seed=3):
    import keras

    from models.heads import quantize_columns

    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    letters = "abcdefghij"
    words = ["<pad>", "<oov>"] + [f"w{a}{b}" for a in letters for b in letters[:6]]
    q, scale = quantize_columns(rng.normal(size=(len(words), 8)).T)
    word_q, word_scale = q.T.copy(), scale
    cfg = SQAMConfig(
        ngram_dim=4, tower_dim=16, shared_dims=(16, 8), use_ngrams=use_ngrams, use_words=use_words, loss=loss
    )
    idf = rng.uniform(1.0, 5.0, NGRAM_BUCKETS).astype(np.float32)
    feats = rng.normal(size=(12, 5)).astype(np.float32)
    sqam = SQAM(dequantize_rows(word_q, word_scale), NGRAM_BUCKETS, feats, cfg, idf, prior=rng.normal(size=12))
    if use_ngrams:  # what ships is int8 rows with a scale each; make Keras hold the same values
        layer = sqam.question_tower.get_layer("ngram_embedding")
        q, scale = quantize_columns(rng.normal(size=layer.get_weights()[0].shape).T)
        layer.set_weights([(q.astype(np.float32) * scale).T])
    return sqam, TextFeaturizer(Vocabulary(words)), word_q, word_scale


@pytest.mark.parametrize("use_ngrams, use_words", [(True, True), (False, True), (True, False)])
def test_numpy_question_encoder_matches_keras(use_ngrams, use_words):
    from training.sqam import export_question_weights

    sqam, feat, word_q, word_scale = _tiny_sqam(use_ngrams, use_words)
    texts = ["wab wac wad", "wbe", "wca wcb wcc wcd wce wcf wda wdb wdc unknownword", "wad wad"]
    batch = feat.featurize(texts)
    expected = np.asarray(sqam.encode_questions((batch.word_ids, batch.ngram_ids)))
    assert (batch.word_ids > 1).sum() == 15  # the words are in the vocabulary
    enc = NumpyQuestionEncoder(export_question_weights(sqam, word_q, word_scale))
    got = enc.encode(batch)
    np.testing.assert_allclose(got, expected, atol=2e-5)
    # Padding must not change a text's vector: encode each text alone.
    for i, t in enumerate(texts):
        np.testing.assert_allclose(enc.encode(feat.featurize([t]))[0], got[i], atol=2e-5)
    # The score is scale · cosine + bias, over the whole catalog.
    logits = np.asarray(sqam((batch.word_ids, batch.ngram_ids)))
    answers = np.asarray(sqam.encode_answers())
    np.testing.assert_allclose(logits, sqam.cfg.scale * got @ answers.T + sqam.bias.numpy(), atol=1e-4)


@pytest.mark.parametrize("loss", ["softmax", "hinge"])
def test_train_step_learns_a_tiny_mapping(loss):
    """Two words, two emojis: a few steps of fit() must rank the right emoji first."""
    import keras

    sqam, feat, _, _ = _tiny_sqam(loss=loss, seed=5)
    texts = ["wab wac", "wfa wfb"] * 32
    b = feat.featurize(texts)
    y = np.zeros((len(texts), 12), np.float32)
    y[0::2, 3] = 1.0
    y[1::2, 7] = 1.0
    sqam.compile(optimizer=keras.optimizers.Adam(0.02))
    hist = sqam.fit((b.word_ids, b.ngram_ids), y, sample_weight=np.ones(len(texts), np.float32), epochs=30,
                    batch_size=16, verbose=0)  # fmt: skip
    assert hist.history["loss"][-1] < hist.history["loss"][0]
    top = np.asarray(sqam((b.word_ids[:2], b.ngram_ids[:2]))).argmax(axis=1)
    assert top.tolist() == [3, 7]
    assert hist.history["top5"][-1] == 1.0


def test_loss_over_the_whole_catalog_is_keras_smoothed_cross_entropy():
    """With no row marked, the loss is Keras's categorical cross-entropy with label
    smoothing, as before rows could choose among a few emojis."""
    import keras

    sqam, _, _, _ = _tiny_sqam(seed=7)
    rng = np.random.default_rng(7)
    cos = rng.uniform(-1, 1, (3, 12)).astype(np.float32)
    target = np.zeros((3, 12), np.float32)
    target[0, 2], target[1, [4, 5]], target[2, 11] = 1.0, 0.5, 1.0
    weight = np.array([1.0, 2.0, 0.5], np.float32)
    logits = sqam.cfg.scale * cos + sqam.bias.numpy()
    per = np.asarray(keras.losses.categorical_crossentropy(target, logits, from_logits=True, label_smoothing=0.1))
    got = float(sqam._loss(target, cos, weight))
    np.testing.assert_allclose(got, (per * weight).sum() / weight.sum(), rtol=1e-5)


@pytest.mark.parametrize("loss", ["softmax", "hinge"])
def test_a_row_that_chose_among_a_few_emojis_says_nothing_of_the_others(loss):
    """A TweetEval tweet chose among its 20 emojis: the others (marked −1) are neither
    positives nor negatives, so its loss does not move with their scores, and it is the
    smoothed cross-entropy (or the hinge) over the few alone."""
    sqam, _, _, _ = _tiny_sqam(loss=loss, seed=8)
    rng = np.random.default_rng(8)
    cos = rng.uniform(-1, 1, (1, 12)).astype(np.float32)
    target = np.full((1, 12), -1.0, np.float32)
    target[0, [1, 4, 6]] = 0.0
    target[0, 4] = 1.0
    weight = np.ones(1, np.float32)
    got = float(sqam._loss(target, cos, weight))
    moved = cos.copy()
    moved[0, [0, 2, 3, 5, 7, 8, 9, 10, 11]] = rng.uniform(-1, 1, 9)
    assert float(sqam._loss(target, moved, weight)) == pytest.approx(got, rel=1e-6)
    few = cos[0, [1, 4, 6]]
    if loss == "softmax":
        logits = sqam.cfg.scale * few + sqam.bias.numpy()[[1, 4, 6]]
        log_p = logits - np.log(np.exp(logits).sum())
        smooth = np.array([0.1 / 3, 0.9 + 0.1 / 3, 0.1 / 3])
        assert got == pytest.approx(float(-(smooth * log_p).sum()), rel=1e-5)
    else:
        expected = np.maximum(0.0, sqam.cfg.margin - few[1] + few[[0, 2]]).mean()
        assert got == pytest.approx(float(expected), rel=1e-5, abs=1e-7)


def test_training_targets_mark_what_a_row_did_not_choose_among():
    from training.sqam import Examples

    _, feat, _, _ = _tiny_sqam()
    ex = Examples(feat, ["wab", "wac"], [[3], [5]], [1.0, 0.3], 12, among=[None, np.array([2, 5, 9])])
    y = ex.targets(np.arange(2))
    assert y[0].tolist() == [0.0] * 3 + [1.0] + [0.0] * 8
    assert sorted(np.flatnonzero(y[1] >= 0).tolist()) == [2, 5, 9]
    assert y[1, 5] == 1.0 and y[1, 2] == 0.0 and (y[1] == -1.0).sum() == 9


def test_retrain_loss_reads_the_popularity_mix_on_feedback_rows_only():
    """A feedback row's loss is −log of the mixture the bot ranks by; a teacher row's (not
    flagged) is the plain softmax cross-entropy; without a mix both are the plain one."""
    from models.sqam import ShippedSQAM
    from training.sqam import export_question_weights

    sqam, feat, word_q, word_scale = _tiny_sqam(seed=7)
    weights = export_question_weights(sqam, word_q, word_scale)
    answers, bias = np.asarray(sqam.encode_answers()), np.asarray(sqam.bias.numpy())
    pop = np.linspace(1.0, 12.0, 12).astype(np.float32)
    pop /= pop.sum()
    t, w = 1.5, 0.25
    mixed = ShippedSQAM(weights, answers, bias, sqam.cfg.scale, dropout=0.0, mix=(pop, t, w, 0.0))
    yielding = ShippedSQAM(weights, answers, bias, sqam.cfg.scale, dropout=0.0, mix=(pop, t, w, 1.0))
    plain = ShippedSQAM(weights, answers, bias, sqam.cfg.scale, dropout=0.0)
    b = feat.featurize(["wab wac", "wfa wfb"])
    inputs = (b.word_ids, b.ngram_ids, np.zeros((2, 12), np.float32))
    logits = np.asarray(plain(inputs), np.float64)
    y = np.zeros((2, 12), np.float32)
    y[0, 11], y[1, 0] = 1.0, 1.0
    none, one = np.zeros((2, 12), np.float32), np.ones(1, np.float32)

    def softmax(z):
        e = np.exp(z - z.max())
        return e / e.sum()

    for r, gold in ((0, 11), (1, 0)):
        row = lambda a, r=r: a[r : r + 1]  # noqa: E731
        want_plain = -np.log(softmax(logits[r])[gold])
        q = softmax(logits[r] / t)
        want_mixed = -np.log((1 - w) * q[gold] + w * pop[gold])
        w_row = w * (1 - q.max())  # sureness 1: the row's weight yields to a sure answer
        want_yielding = -np.log((1 - w_row) * q[gold] + w_row * pop[gold])
        cases = (
            (mixed, 1.0, want_mixed),
            (yielding, 1.0, want_yielding),
            (mixed, 0.0, want_plain),
            (yielding, 0.0, want_plain),
            (plain, 1.0, want_plain),
        )
        for model, flag, want in cases:
            got = model._loss(
                row(logits).astype(np.float32), row(y), row(none), np.full(1, flag, np.float32), weight=one
            )
            np.testing.assert_allclose(float(got), want, rtol=1e-4)


def test_tweeteval_rows_leave_out_the_choosing_tweets_and_choose_among_twenty(data_dir):
    """`train sqam --tweeteval-weight W` trains on TweetEval's train tweets but the 8,000
    on which `train catalog-head` chooses its weights, each choosing among the 20 emojis."""
    from models.catalog import EmojiCatalog
    from training.data import CHOICE_TEXTS, choice_sample, load_tweeteval
    from training.sqam import _tweeteval_rows

    catalog = EmojiCatalog.load(data_dir)
    train = load_tweeteval(data_dir, "train")
    texts, gold, among = _tweeteval_rows(data_dir, catalog, None)
    left_out = choice_sample(len(train.texts), CHOICE_TEXTS)
    assert len(texts) == len(train.texts) - len(left_out)
    assert sorted(catalog.chars[c] for c in among) == sorted(catalog.lookup(e).char for e in train.label_emojis)
    kept = np.setdiff1d(np.arange(len(train.texts)), left_out)
    assert texts == [train.texts[i] for i in kept]
    assert [catalog.chars[g[0]] for g in gold[:50]] == [
        catalog.lookup(train.label_emojis[train.labels[i]]).char for i in kept[:50]
    ]
