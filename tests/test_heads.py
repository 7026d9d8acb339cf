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


def test_heads_only_push_their_own_emojis_down(shipped):
    q = shipped.encoder.encode(shipped.featurizer.featurize(TEXTS))
    plain = q @ shipped.answers.T - shipped.hub_lambda * shipped.hub
    full = shipped.scores(TEXTS)
    diff = full - plain
    in_group = np.zeros(len(shipped.chars), bool)
    for pos in shipped._head_positions:
        in_group[pos] = True
    assert np.allclose(diff[:, ~in_group], 0.0, atol=1e-5)  # the rest of the catalog is untouched
    assert (diff[:, in_group] <= 1e-6).all()  # a head never lifts an emoji
    for pos in shipped._head_positions:  # each group keeps one member at its SQAM score
        assert np.allclose(diff[:, pos].max(axis=1), 0.0, atol=1e-5)


def test_candidate_scores_match_full_catalog_scores(shipped):
    cands = ["❤️", "😂", "🎉", "😡", "🐶", "🎄"]
    rows = shipped.candidate_indices(cands)
    np.testing.assert_allclose(shipped.scores(TEXTS, cands), shipped.scores(TEXTS)[:, rows], atol=1e-5)


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
