"""The supervised heads: offsets, how they join the SQAM, and the shipped head file."""

import numpy as np
import pytest

from training.calibrate import cross_fitted_gain, fit_offsets
from training.metrics import macro_f1


def _biased_problem(rng, n=3000):
    """Three classes; class 2 is real but the scores under-rate it by a fixed margin."""
    y = rng.integers(0, 3, n)
    scores = rng.normal(0, 1, (n, 3))
    scores[np.arange(n), y] += 1.5
    scores[:, 2] -= 1.2
    return scores, y


def test_offsets_raise_macro_f1_on_fresh_data():
    rng = np.random.default_rng(0)
    s, y = _biased_problem(rng)
    off = fit_offsets(s, y)
    assert off[2] - off[:2].mean() > 0.5  # it finds the under-rated class
    s2, y2 = _biased_problem(rng)
    before = macro_f1(y2, s2.argmax(1), 3)
    after = macro_f1(y2, (s2 + off).argmax(1), 3)
    assert after > before + 0.05


def test_cross_fitted_gain_reports_unseen_halves():
    s, y = _biased_problem(np.random.default_rng(1))
    res = cross_fitted_gain(s, y)
    assert res["macro_f1_with"] > res["macro_f1_without"]


def test_offsets_leave_a_calibrated_problem_alone():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 3, 3000)
    s = rng.normal(0, 1, (3000, 3))
    s[np.arange(3000), y] += 3.0  # already nearly perfect: nothing to gain
    off = fit_offsets(s, y)
    assert macro_f1(y, (s + off).argmax(1), 3) >= macro_f1(y, s.argmax(1), 3)


@pytest.fixture(scope="module")
def shipped(ranker):
    if ranker.heads is None:
        pytest.fail(f"the shipped artifacts lack working heads: {ranker.heads_note}")
    return ranker


TEXTS = ["merry christmas everyone", "my flight got cancelled again", "sunset at the beach", "lol"]


class _Unguarded:
    """The shipped ranker whose ``scores`` leave the guards out unless told otherwise."""

    def __init__(self, ranker):
        self._ranker = ranker

    def __getattr__(self, name):
        return getattr(self._ranker, name)

    def scores(self, texts, **terms):
        return self._ranker.scores(texts, **{"grave": False, "complaint": False, **terms})


def test_whole_catalog_is_the_sqam_the_names_their_meanings_the_head_and_the_sentence_mixed_with_popularity(shipped):
    # the sum and the mix, before the guards (a complaint's emojis of delight moved below the
    # rest: tests/unit/test_complaint.py, test_grave.py); the complaint model reads the
    # cancelled flight as one
    shipped = _Unguarded(shipped)
    batch = shipped.featurizer.featurize(TEXTS)
    q = shipped.encoder.encode(batch)
    plain = shipped.scale * (q @ shipped.answers.T) + shipped.bias
    alone = dict(catalog_head=False, sentence=False, prior=False)
    np.testing.assert_allclose(shipped.scores(TEXTS, names=False, **alone), plain, atol=1e-5)
    named = plain + shipped.names.weight * shipped.names.scores(batch.word_ids)
    np.testing.assert_allclose(shipped.scores(TEXTS, meanings=False, **alone), named, atol=1e-5)
    named += shipped.meanings.weight * shipped.meanings.scores(batch.word_ids)
    np.testing.assert_allclose(shipped.scores(TEXTS, **alone), named, atol=1e-5)
    head = shipped.catalog_head
    rows = shipped.encoder.ngram_rows(batch.ngram_ids)
    # weight · (head − unseen): an emoji the head does not know gets nothing
    full = named + head.weight * (head.scores(rows) - head.unseen)
    np.testing.assert_allclose(shipped.scores(TEXTS, prior=False, sentence=False), full, atol=1e-4)
    # weight · (log p(e | text) − log share(e)), the row's smallest for an emoji the student lacks
    term = shipped.sentence
    assert term is not None and term.weight > 0, shipped.sentence_note
    full += term.weight * term.scores(rows, shipped.encoder.inputs(batch, rows))
    np.testing.assert_allclose(shipped.scores(TEXTS, prior=False), full, atol=1e-4)
    # last, the popularity mix: (1 − w) · softmax(full / T) + w · popularity, each text's
    # w the mix's weight times (1 − the softmax's largest probability) ** sureness
    mix = shipped.prior
    z = np.exp(full / mix.temperature - (full / mix.temperature).max(axis=1, keepdims=True))
    z /= z.sum(axis=1, keepdims=True)
    w = mix.weight * (1 - z.max(axis=1, keepdims=True)) ** mix.sureness
    p = (1 - w) * z + w * mix.popularity
    np.testing.assert_allclose(shipped.scores(TEXTS), p, rtol=1e-3, atol=1e-8)


def test_heads_on_catalog_touch_only_their_own_emojis(shipped):
    shipped = _Unguarded(shipped)
    diff = shipped.scores(TEXTS, heads_on_catalog=True, prior=False) - shipped.scores(TEXTS, prior=False)
    in_group = np.zeros(len(shipped.chars), bool)
    for pos in shipped._head_positions:
        in_group[pos] = True
    assert np.allclose(diff[:, ~in_group], 0.0, atol=1e-5)
    assert (diff[:, in_group] <= 1e-6).all() and (diff[:, in_group] < -1e-3).any()


def test_heads_only_push_their_own_emojis_down_among_candidates(shipped):
    cands = [shipped.chars[i] for i in np.concatenate(shipped._head_positions)] + ["🐶", "🍕"]
    rows = shipped.candidate_indices(cands)
    q = shipped.encoder.encode(shipped.featurizer.featurize(TEXTS))
    plain = shipped.scale * (q @ shipped.answers[rows].T) + shipped.bias[rows]
    diff = shipped.scores(TEXTS, cands) - plain
    n = sum(len(p) for p in shipped._head_positions)
    assert np.allclose(diff[:, n:], 0.0, atol=1e-5)  # emojis of no head are untouched
    assert (diff[:, :n] <= 1e-6).all()  # a head never lifts an emoji
    start = 0
    for pos in shipped._head_positions:  # each group keeps one member at its SQAM score
        assert np.allclose(diff[:, start : start + len(pos)].max(axis=1), 0.0, atol=1e-5)
        start += len(pos)


def test_candidate_scores_without_heads_match_full_catalog_scores(shipped):
    cands = ["🐶", "🍕", "🚀", "🌧️"]  # no head knows these
    rows = shipped.candidate_indices(cands)
    # the names say none of these (they add nothing); words near them in meaning may
    whole = shipped.scores(TEXTS, catalog_head=False, sentence=False, prior=False, meanings=False)
    np.testing.assert_allclose(shipped.scores(TEXTS, cands), whole[:, rows], atol=1e-5)


def test_airline_head_reads_sentiment(shipped):
    top = shipped.rank(["worst airline ever, lost my bags and no one helps"], k=1, candidates=["🎉", "😈", "😡"])
    assert top[0][0].emoji == "😡"
    top = shipped.rank(["thank you so much, the crew was amazing!"], k=1, candidates=["🎉", "😈", "😡"])
    assert top[0][0].emoji == "🎉"


def test_lexicon_columns_score_sentiment_and_survive_save_and_load(tmp_path):
    from models.heads import BLOCK_FEATURES, HeadGroup, SurfaceFeatures, TextHeads

    idf = [np.ones(BLOCK_FEATURES, np.float32)] * 2
    feats = SurfaceFeatures(idf, lexicon=True)
    texts = ["I love this crew, thank you!", "worst flight ever, delayed again and rude staff", "gate 12"]
    x = feats.transform(texts)
    assert x.shape == (3, 2 * BLOCK_FEATURES + 4) == (3, feats.n_features)
    neg, neu, pos, compound = np.asarray(x[:, -4:].todense()).T
    assert compound[0] > 0.5 and compound[1] < -0.5 and compound[2] == 0.0
    assert pos[0] > neg[0] and neg[1] > pos[1] and neu[2] == 1.0

    rng = np.random.default_rng(0)
    weights = rng.normal(0, 0.05, (feats.n_features, 3)).astype(np.float32)
    weights[-4:] = [[2.0, -1.0, 0.5], [0.0, 0.1, 0.0], [-2.0, 1.0, 0.3], [-3.0, 0.2, 3.0]]
    group = HeadGroup("airline", ["😡", "😈", "🎉"], weights, np.zeros(3, np.float32), 1.0, np.zeros(3, np.float32))
    TextHeads(feats, [group], "digest").save(tmp_path / "heads.npz")
    loaded = TextHeads.load(tmp_path / "heads.npz")
    assert loaded.features.lexicon
    back = loaded.groups[0].weights
    np.testing.assert_array_equal(back[-4:], weights[-4:])  # lexicon weights kept exactly
    np.testing.assert_allclose(back[:-4], weights[:-4], atol=np.abs(weights[:-4]).max() / 127)
    # without the lexicon columns in the file, the features are the n-grams alone
    TextHeads(
        SurfaceFeatures(idf), [HeadGroup("g", ["🎉"], weights[:-4, :1], np.zeros(1), 1.0, np.zeros(1))], "d"
    ).save(tmp_path / "plain.npz")
    assert not TextHeads.load(tmp_path / "plain.npz").features.lexicon


def test_the_character_block_is_recorded_and_an_older_file_reads_with_its_own(tmp_path):
    """The heads file says which character n-grams its weights were trained on: a file
    written before the block changed (no record) is read with char_wb 2–5, a new one with
    what it recorded, so a head never scores features it was not trained on."""
    from models.heads import (
        BLOCK_FEATURES,
        CHAR_NGRAMS,
        LEGACY_CHAR_NGRAMS,
        HeadGroup,
        SurfaceFeatures,
        TextHeads,
    )

    idf = [np.ones(BLOCK_FEATURES, np.float32)] * 2
    texts = ["so hot today", "gate 12"]
    new, old = SurfaceFeatures(idf), SurfaceFeatures(idf, char=LEGACY_CHAR_NGRAMS)
    assert new.char == CHAR_NGRAMS != LEGACY_CHAR_NGRAMS
    assert (new.transform(texts) != old.transform(texts)).nnz  # the blocks differ
    assert new.blocks[1] == "char 1-6" and old.blocks[1] == "char_wb 2-5"

    group = HeadGroup("g", ["🎉"], np.zeros((new.n_features, 1), np.float32), np.zeros(1), 1.0, np.zeros(1))
    TextHeads(new, [group], "d").save(tmp_path / "new.npz")
    loaded = TextHeads.load(tmp_path / "new.npz").features
    assert loaded.char == CHAR_NGRAMS
    assert (loaded.transform(texts) != new.transform(texts)).nnz == 0

    with np.load(tmp_path / "new.npz") as z:  # a file from before the record
        arrays = {k: z[k] for k in z.files if k != "char_ngrams"}
    np.savez_compressed(tmp_path / "old.npz", **arrays)
    loaded = TextHeads.load(tmp_path / "old.npz").features
    assert loaded.char == LEGACY_CHAR_NGRAMS
    assert (loaded.transform(texts) != old.transform(texts)).nnz == 0


def test_sequence_batches_are_cut_to_their_longest_tweet_and_padding_changes_no_logit():
    """The BiLSTM trains on batches cut after their longest tweet (the LSTM steps through
    every column, padding too): every tweet once per epoch, whole; and the padding the cut
    saves changes no logit (it is masked)."""
    from training.sequence import SequenceSettings, TrimmedBatches, fit_sequence, predict_sequence

    rng = np.random.default_rng(1)
    lengths = np.array([1, 2, 3, 12, 2, 1, 4, 3, 2, 5])
    ids = np.zeros((len(lengths), 30), np.int32)  # padded far past the longest tweet
    for i, n in enumerate(lengths):
        ids[i, :n] = rng.integers(1, 12, n)
        ids[i, 0] = i + 1  # each row tells which tweet it is
    labels = np.arange(len(lengths)) % 3
    batches = TrimmedBatches(ids, labels, batch_size=4, seed=0)
    orders = []
    for _ in range(2):  # two epochs
        seen = []
        for x, y in batches:
            rows = [int(r[0]) - 1 for r in x]
            assert (ids[rows, x.shape[1] :] == 0).all()  # nothing but padding cut off
            assert x.shape[1] == lengths[rows].max()  # cut to the batch's longest tweet
            assert (y == labels[rows]).all()
            seen += rows
        assert sorted(seen) == list(range(len(lengths)))  # every tweet once
        orders.append(seen)
    assert orders[0] != orders[1]  # each epoch in a new order

    vectors = rng.normal(0, 0.5, (12, 4)).astype(np.float32)
    vectors[0] = 0.0
    settings = SequenceSettings(lstm_units=3, epochs=1, batch_size=4)
    model = fit_sequence(vectors, ids, labels, 3, settings)
    wide = np.asarray(model(ids, training=False))
    np.testing.assert_allclose(predict_sequence(model, ids, settings), wide, atol=1e-5)


def test_sequence_head_in_numpy_matches_keras_and_survives_save_and_load(tmp_path):
    """The BiLSTM part of a head trains in Keras and runs in NumPy: same logits, after a
    round trip through the head file, for texts of different lengths in one batch."""
    from models.heads import BLOCK_FEATURES, HeadGroup, SequenceHead, SurfaceFeatures, TextHeads
    from models.text import TextFeaturizer, Vocabulary
    from training.sequence import SequenceSettings, export_sequence, fit_sequence, predict_sequence

    words = ["<pad>", "<unk>", "great", "flight", "late", "again", "thanks", "crew", "bag", "lost", "the", "a"]
    vocab = Vocabulary(words)
    featurizer = TextFeaturizer(vocab)
    rng = np.random.default_rng(0)
    vectors = rng.normal(0, 0.5, (len(words), 8)).astype(np.float32)
    vectors[0] = 0.0
    texts = ["great flight thanks crew", "late again", "lost the bag again and again, the crew", "a"] * 20
    labels = np.array([0, 2, 2, 1] * 20)
    settings = SequenceSettings(lstm_units=6, epochs=40, batch_size=16, learning_rate=1e-2)
    batch = featurizer.featurize(texts)
    model = fit_sequence(vectors, batch.word_ids, labels, 3, settings)
    keras_logits = predict_sequence(model, batch.word_ids, settings)
    assert (keras_logits.argmax(1) == labels).mean() == 1.0  # it learns the toy problem

    feats = SurfaceFeatures([np.ones(BLOCK_FEATURES, np.float32)] * 2)
    group = HeadGroup(
        "airline",
        ["🎉", "😈", "😡"],
        np.zeros((feats.n_features, 3), np.float32),
        np.zeros(3, np.float32),
        1.0,
        np.zeros(3, np.float32),
        SequenceHead(export_sequence(model, scale=0.5)),
    )
    TextHeads(feats, [group], "digest").save(tmp_path / "heads.npz")
    loaded = TextHeads.load(tmp_path / "heads.npz").groups[0]
    assert loaded.sequence is not None
    fresh = featurizer.featurize(texts[:4])  # a batch of its own: padded to its own length
    np.testing.assert_allclose(loaded.sequence.logits(vectors, fresh), 0.5 * keras_logits[:4], atol=1e-4)
    x = feats.transform(texts[:4])
    np.testing.assert_allclose(loaded.head_scores(x, vectors, fresh), 0.5 * keras_logits[:4], atol=1e-4)
    with pytest.raises(ValueError, match="reads words"):
        loaded.head_scores(x)


def test_stack_weights_pick_the_blend_that_beats_either_model():
    from training.heads import _stack_weights

    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 4000)
    truth = np.eye(3)[y] * 1.2
    a, b = truth + rng.normal(0, 1, (4000, 3)), truth + rng.normal(0, 1, (4000, 3))  # independent errors
    weights, acc = _stack_weights([a, b], y, 0.1)
    alone = max((a.argmax(1) == y).mean(), (b.argmax(1) == y).mean())
    assert acc > alone + 0.03 and 0.3 <= weights[0] <= 0.7
    assert sum(weights) == pytest.approx(1.0)
    # equal accuracy everywhere: the most even blend, not whichever comes first
    perfect = np.eye(3)[y] * 5.0
    even, _ = _stack_weights([perfect, perfect, perfect], y, 0.1)
    assert max(even) == 0.4 and min(even) >= 0.2


def test_nbsvm_is_one_linear_map_that_learns_and_leaves_dense_columns_unscaled():
    from scipy.sparse import csr_matrix

    from training.heads import _nbsvm

    rng = np.random.default_rng(4)
    y = rng.integers(0, 3, 600)
    x = (rng.random((600, 40)) < 0.1).astype(np.float32)
    x[np.arange(600), y] = 1.0  # column k marks class k
    x[:, -1] = np.where(y == 2, -0.8, 0.3)  # a dense score column, negative for class 2
    w, b = _nbsvm(csr_matrix(x), y, 3, 1.0, 0.5, n_plain=1)
    assert w.shape == (40, 3) and b.shape == (3,)
    assert ((x @ w + b).argmax(1) == y).mean() > 0.97
    # the dense column is not scaled by a presence ratio: negating it negates its weights
    # (up to the solver's tolerance, a few %); scaled by its presence, the weights move ~30%
    flipped = x.copy()
    flipped[:, -1] *= -1
    w_flipped, _ = _nbsvm(csr_matrix(flipped), y, 3, 1.0, 0.5, n_plain=1)
    np.testing.assert_allclose(w_flipped[-1], -w[-1], rtol=0.1)
    w_plain, _ = _nbsvm(csr_matrix(x), y, 3, 1.0, 0.5, n_plain=0)
    w_ratio, _ = _nbsvm(csr_matrix(flipped), y, 3, 1.0, 0.5, n_plain=0)
    assert not np.allclose(w_ratio[-1], -w_plain[-1], rtol=0.2)
    # a class missing from the labels gets no weights and scores below the others on the
    # texts it was trained on
    w, b = _nbsvm(csr_matrix(x[y < 2]), y[y < 2], 3, 1.0, 0.5, n_plain=1)
    assert (w[:, 2] == 0).all() and ((x[y < 2] @ w + b).argmax(1) != 2).all()


def test_airline_stack_refuses_too_few_tweets_with_a_clear_error():
    from scipy.sparse import csr_matrix

    from training.data import DataError
    from training.heads import HeadSettings, _airline_stack

    class Bar:
        def set_postfix_str(self, _):
            pass

    y = np.array([0, 0, 0, 1, 1, 1, 2])  # one negative tweet: nothing to cross-validate
    x = csr_matrix(np.eye(7, dtype=np.float32))
    with pytest.raises(DataError, match="at least 2 training tweets of each sentiment"):
        _airline_stack(HeadSettings(), x, 0, np.ones((7, 3), np.int32), np.zeros((2, 4), np.float32), y, 3, Bar())


def test_out_of_fold_scores_come_from_models_that_never_saw_the_row():
    """Each row is scored once, by the model of the folds that left it out: a model that
    memorises its training rows scores every row as unseen. Too few tweets of an emoji is a
    clear error."""
    from training.data import DataError
    from training.heads import _folds, _out_of_fold

    class Bar:
        def set_postfix_str(self, _):
            pass

    y = np.repeat(np.arange(4), 10)
    folds = _folds(y, 5, seed=13, what="TweetEval head", label="emoji")
    assert len(folds) == 5
    assert sorted(np.concatenate([te for _, te in folds]).tolist()) == list(range(40))
    assert all(np.bincount(y[te], minlength=4).tolist() == [2, 2, 2, 2] for _, te in folds)  # stratified

    def memorise(tr, te):  # 1 where the row was trained on, 0 where it is new
        return np.isin(te, tr)[:, None].astype(np.float32) * np.ones((1, 4), np.float32)

    assert not _out_of_fold(folds, 4, memorise, "test", Bar()).any()
    with pytest.raises(DataError, match="at least 2 training tweets of each emoji"):
        _folds(np.array([0, 0, 0, 1]), 5, seed=13, what="TweetEval head", label="emoji")
    assert len(_folds(np.array([0, 0, 0, 1, 1]), 5, seed=13, what="TweetEval head", label="emoji")) == 2


def test_linear_folds_fitted_side_by_side_give_what_they_give_one_after_another():
    """Linear folds run in threads, one per core: every row still scored by the model that
    never saw it, and the same scores as fitting the folds one at a time (the solver's
    order of rows is fixed)."""
    from scipy.sparse import random as sparse_random

    from training.heads import _folds, _linear, _out_of_fold, _svm_fitter

    class Bar:
        def set_postfix_str(self, _):
            pass

    y = np.repeat(np.arange(3), 40)
    x = sparse_random(120, 50, density=0.2, format="csr", random_state=3) + 0.0
    x[np.arange(120), y] += 2.0  # a feature that tells each class
    folds = _folds(y, 5, seed=13, what="TweetEval head", label="emoji")
    fit = _linear(x, y, 3, _svm_fitter(0.2, True))
    one = _out_of_fold(folds, 3, fit, "test", Bar(), workers=1)
    both = _out_of_fold(folds, 3, fit, "test", Bar(), workers=2)
    np.testing.assert_array_equal(one, both)
    assert (one.argmax(axis=1) == y).mean() > 0.9  # it learned the telling feature


def test_the_word_block_carries_a_label_to_words_of_the_same_meaning_and_survives_save_and_load(tmp_path):
    """The heads learn over the n-grams and the mean word vector side by side: a word the
    n-grams never saw with a label ("superb") is scored like the words near it ("great"),
    and the head file gives back what the linear model learned over both."""
    from types import SimpleNamespace

    from models.heads import BLOCK_FEATURES, HeadGroup, SurfaceFeatures, TextHeads
    from models.text import TextFeaturizer, Vocabulary
    from training.heads import _split, _svm_fitter, _with_words

    words = ["<pad>", "<unk>", "great", "superb", "awful", "terrible", "flight", "crew"]
    featurizer = TextFeaturizer(Vocabulary(words))
    rng = np.random.default_rng(0)
    vectors = rng.normal(0, 0.05, (len(words), 8)).astype(np.float32)
    vectors[0] = 0.0
    vectors[[2, 3], 0] += 1.0  # great ~ superb
    vectors[[4, 5], 1] += 1.0  # awful ~ terrible
    ranker = SimpleNamespace(encoder=SimpleNamespace(word_vectors=vectors), featurizer=featurizer)
    feats = SurfaceFeatures([np.ones(BLOCK_FEATURES, np.float32)] * 2)
    texts = ["great flight", "great crew", "awful flight", "awful crew"] * 10
    labels = np.array([0, 0, 1, 1] * 10)
    x = feats.transform(texts)
    xw = _with_words(x, texts, ranker, 0.5)
    assert xw.shape == (len(texts), x.shape[1] + 8)
    assert _with_words(x, texts, ranker, 0.0) is x  # off: the n-grams alone
    w, b = _svm_fitter(1.0, True)(xw, labels, 2)
    sparse, word_weights = _split(w, x.shape[1], 0.5)
    assert word_weights is not None and _split(w[: x.shape[1]], x.shape[1], 0.5)[1] is None
    group = HeadGroup("g", ["🎉", "😡"], sparse, b, 1.0, np.zeros(2, np.float32), None, word_weights)
    TextHeads(feats, [group], "digest").save(tmp_path / "heads.npz")
    loaded = TextHeads.load(tmp_path / "heads.npz").groups[0]

    fresh = ["superb flight", "terrible crew"]
    batch = featurizer.featurize(fresh)
    scores = loaded.head_scores(feats.transform(fresh), vectors, batch)
    assert list(scores.argmax(1)) == [0, 1]
    full = _with_words(feats.transform(fresh), fresh, ranker, 0.5) @ w + b  # before the split and the file
    np.testing.assert_allclose(scores, full, atol=np.abs(w[: x.shape[1]]).max() / 127 * 10)
    with pytest.raises(ValueError, match="reads words"):
        loaded.head_scores(feats.transform(fresh))


def test_the_sentence_block_learns_out_of_fold_adds_its_log_probabilities_and_survives_save_and_load(tmp_path):
    """The TweetEval head's sentence block: a logistic regression over MiniLM sentence
    vectors (the real encoder), chosen out of fold, whose log-probabilities join the head
    at its share. Sentences of the same meaning in other words ("the plane was late" for
    "my flight got delayed") land on the same label; a head with a block refuses to score
    without the vectors, and the file gives the block back."""
    from types import SimpleNamespace

    from models.heads import BLOCK_FEATURES, HeadGroup, SurfaceFeatures, TextHeads
    from models.minilm import MiniLM
    from training.heads import HeadSettings, _folds, _sentence_block

    glad = ["what a wonderful day", "I am so happy today", "this is the best news ever", "we won, amazing"]
    late = ["my flight got delayed again", "the train is late", "stuck waiting at the gate", "the bus never came"]
    texts, y = glad * 5 + late * 5, np.array([0] * 20 + [1] * 20)
    encoder = MiniLM()
    vectors = encoder.encode(texts)
    head_oof = np.zeros((len(y), 3))  # a head that knows nothing; label 2 no tweet has
    s = HeadSettings(tweet_sentence_shares=(0.0, 0.5, 1.0))
    bar = SimpleNamespace(set_postfix_str=lambda _: None)
    (w, b, share), combined, report = _sentence_block(s, _folds(y, 5, 0, "t", "l"), vectors, y, 3, head_oof, bar)
    assert share > 0 and report["sentence_share"] in (0.5, 1.0) and report["sentence_alone_oof_macro_f1"] > 0.9
    assert list(combined.argmax(1)) == list(y)  # out of fold, the block alone decides
    assert w.shape == (384, 3) and w[:, 2].max() == 0 and b[2] < -10  # the label it never saw

    feats = SurfaceFeatures([np.ones(BLOCK_FEATURES, np.float32)] * 2)
    zeros = np.zeros((feats.n_features, 3), np.float32)
    group = HeadGroup("g", ["🎉", "😡", "😈"], zeros, np.zeros(3), 1.0, np.zeros(3), None, None, w, b, share)
    TextHeads(feats, [group], "digest").save(tmp_path / "heads.npz")
    heads = TextHeads.load(tmp_path / "heads.npz")
    loaded = heads.groups[0]
    assert loaded.reads_sentences and loaded.sentence_share == pytest.approx(share)
    fresh = ["the plane was late", "such a lovely sunny afternoon"]
    x = feats.transform(fresh)
    adj = loaded.adjust(x, sentences=heads.sentence_vectors(fresh))
    assert list(adj.argmax(1)) == [1, 0] and adj.max() == 0  # shifted so each row's best is 0
    logp = loaded.sentence_scores(encoder.encode(fresh))
    np.testing.assert_allclose(np.exp(logp).sum(1), 1.0, rtol=1e-5)
    with pytest.raises(ValueError, match="sentence vectors"):
        loaded.adjust(x)


def test_the_airline_stack_takes_a_sentence_member_where_cross_validation_gives_it_weight():
    """The airline head's fourth stack member: a logistic regression over MiniLM sentence
    vectors (the real encoder). Where the n-gram features say nothing and the sentences say
    everything, the cross-validated stack gives the member its weight and returns its
    weights; without the vectors the stack has three members and no block."""
    from types import SimpleNamespace

    from scipy.sparse import csr_matrix

    from models.minilm import MiniLM
    from training.heads import HeadSettings, _airline_stack

    glad = ["what a wonderful day", "I am so happy today", "this is the best news ever", "we won, amazing"]
    late = ["my flight got delayed again", "the train is late", "stuck waiting at the gate", "the bus never came"]
    plain = ["the meeting is at noon", "here is the report", "the store opens at nine", "it is a tuesday"]
    texts = (glad + late + plain) * 5
    y = np.array(([0] * 4 + [2] * 4 + [1] * 4) * 5)
    sentences = MiniLM().encode(texts)
    rng = np.random.default_rng(0)
    x = csr_matrix(rng.uniform(size=(len(y), 30)).astype(np.float32))  # features that know nothing
    s = HeadSettings(airline_cs=(0.3,), airline_sequence=None)
    bar = SimpleNamespace(set_postfix_str=lambda _: None)
    w, b, seq, sentence, report = _airline_stack(s, x, 0, None, None, y, 3, bar, sentences)
    weights = report["airline_stack"]["weights"]
    assert set(weights) == {"svm", "nbsvm", "sentence"} and weights["sentence"] >= 0.5
    assert report["airline_stack"]["cv_accuracy"]["sentence"] > 0.9
    assert seq is None and sentence is not None
    sw, sb, factor = sentence
    assert sw.shape == (384, 3) and sb.shape == (3,) and factor > 0
    z = MiniLM().encode(["the plane was late", "such a lovely sunny afternoon"]) @ sw + sb
    assert list(z.argmax(1)) == [2, 0]
    *_, none, report = _airline_stack(s, x, 0, None, None, y, 3, bar)
    assert none is None and set(report["airline_stack"]["weights"]) == {"svm", "nbsvm"}


def test_the_airline_group_joins_the_sqam_at_its_fixed_mix_sentence_member_included():
    """The shipped airline group adds its stack (the linear members through β, the sentence
    member through its own share) next to the SQAM at ``airline_mix``: on its training
    texts the spread of the group's adjustment is mix / (1 − mix) times the SQAM's. A
    sentence member added at its stack weight without β (or β computed without it) breaks
    that."""
    from types import SimpleNamespace

    from scipy.sparse import csr_matrix

    from models.minilm import MiniLM
    from models.ranker import TextRanker
    from training.heads import HeadSettings, _airline_head, _spread, _with_words

    glad = ["what a wonderful flight", "I am so happy with the crew", "best airline ever", "landed early, amazing"]
    late = ["my flight got delayed again", "the plane is late", "stuck waiting at the gate", "they lost my bag"]
    plain = ["which gate for the flight", "here is my booking", "the lounge opens at nine", "boarding at noon"]
    texts = (glad + late + plain) * 5
    y = np.array(([0] * 4 + [2] * 4 + [1] * 4) * 5)
    ranker = TextRanker()
    ranker.heads = None  # the SQAM alone, as `train heads` reads it
    s = HeadSettings(airline_cs=(0.3,), airline_sequence=None)
    x = csr_matrix(np.random.default_rng(0).uniform(size=(len(y), 30)).astype(np.float32))
    xw = _with_words(x, texts, ranker, s.word_block)
    emojis = ["🎉", "😈", "😡"]
    bar = SimpleNamespace(set_postfix_str=lambda _: None, close=lambda: None)
    sentences = MiniLM().encode(texts)
    group, report = _airline_head(s, ranker, xw, x, 30, xw.shape[1] - 30, texts, y, emojis, bar, sentences)
    assert report["airline_stack"]["weights"]["sentence"] > 0 and group.reads_sentences
    assert group.beta > 2  # so that a share without β would show
    adj = group.adjust(x, ranker.encoder.word_vectors, ranker.featurizer.featurize(texts), sentences)
    sq = ranker.scores_in_chunks(texts, emojis)
    assert _spread(adj) == pytest.approx(s.airline_mix / (1 - s.airline_mix) * _spread(sq), rel=1e-3)


def test_the_tweeteval_mix_is_chosen_where_the_sqam_did_not_train():
    """An SQAM trained on most of TweetEval's train tweets scores them in-sample (here:
    nearly perfect) and the rest no better than chance. Chosen over every tweet, the mix
    would trust it; chosen on the tweets it left out (``choose``), it trusts the head."""
    from scipy.sparse import csr_matrix
    from tqdm import tqdm

    from training.heads import HeadSettings, _tweeteval_head

    rng = np.random.default_rng(11)
    n, k = 2000, 4
    y = rng.integers(0, k, n)
    x = (rng.random((n, 40)) < 0.05).astype(np.float32)
    x[np.arange(n), y] = (rng.random(n) < 0.7).astype(np.float32)  # column c marks class c, often
    unseen = np.sort(rng.choice(n, 400, replace=False))
    sq = rng.normal(0, 1, (n, k))
    seen = np.setdiff1d(np.arange(n), unseen)
    sq[seen, y[seen]] += 4.0  # in-sample: the SQAM knows these labels
    s = HeadSettings(calibrate=False)
    bar = tqdm(disable=True)
    over_all = _tweeteval_head(s, csr_matrix(x), y, k, 0, sq, bar)
    on_unseen = _tweeteval_head(s, csr_matrix(x), y, k, 0, sq, bar, choose=unseen)
    assert over_all.report["mix"] <= 0.4 and on_unseen.report["mix"] >= 0.7
    assert on_unseen.report["tweeteval_choice_rows"] == 400
    assert over_all.report["tweeteval_choice_rows"] == n
    # on the tweets the SQAM never saw, the head chosen there ranks better
    f1 = [macro_f1(y[unseen], (sq + t.beta * (x @ t.w + t.b))[unseen].argmax(1), k) for t in (over_all, on_unseen)]
    assert f1[1] > f1[0]


def test_the_heads_know_which_tweeteval_tweets_the_sqam_left_out(tmp_path):
    """`train heads` reads from the SQAM's manifest whether it trained on TweetEval's train
    tweets; if so, the choosing draw (the tweets `train sqam` leaves out) is where the mix
    is chosen."""
    from models.artifacts import update_manifest
    from training.data import CHOICE_TEXTS, choice_sample
    from training.heads import sqam_unseen

    update_manifest(tmp_path, "sqam", {"settings": {"tweeteval_weight": 0.0}})
    assert sqam_unseen(tmp_path, 45_000, 45_000) is None
    update_manifest(tmp_path, "sqam", {"settings": {"tweeteval_weight": 0.3}})
    np.testing.assert_array_equal(sqam_unseen(tmp_path, 45_000, 45_000), choice_sample(45_000, CHOICE_TEXTS))
    first = sqam_unseen(tmp_path, 45_000, 1_000)
    assert len(first) > 0 and first.max() < 1_000
