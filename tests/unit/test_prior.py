"""The popularity mix (models.prior), how `train catalog-head` chooses it, and how the ranker uses it."""

import functools

import numpy as np
import pytest

from models.prior import SMOOTHING, PopularityMix
from training.catalog_head import choose_sentence_and_mix, fit_temperature

POSITIONS = {"😂": 0, "❤️": 1, "🍕": 2, "🌮": 3, "🐶": 4}


def _mix(weight=0.2, temperature=1.0):
    # ☕ is not in this catalog: its count goes
    return PopularityMix(["😂", "❤️", "🍕", "☕"], [60, 30, 2, 500], temperature, weight).bind(POSITIONS, 5)


def test_popularity_is_smoothed_over_the_catalog():
    mix = _mix()
    expected = np.array([60, 30, 2, 0, 0]) + SMOOTHING
    np.testing.assert_allclose(mix.popularity, expected / expected.sum(), rtol=1e-6)


def test_a_sure_score_keeps_its_ranking_and_a_flat_one_turns_to_the_popular_emojis():
    mix = _mix(weight=0.2)
    sure = [0.0, 0.0, 12.0, 0.0, 0.0]  # 🍕 far ahead
    flat = [0.0, 0.0, 0.3, 0.2, 0.0]  # 🍕 and 🌮 barely ahead of the rest
    p = mix.probabilities(np.array([sure, flat], np.float32))
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)
    assert p[0].argmax() == POSITIONS["🍕"]
    assert list(np.argsort(-p[1])[:2]) == [POSITIONS["😂"], POSITIONS["❤️"]]
    np.testing.assert_allclose(mix.probabilities(np.array([sure, flat], np.float32)), p, rtol=1e-6)


def test_what_popularity_gives_is_the_mixtures_second_half():
    mix = _mix(weight=0.2)
    s = np.array([[0.0, 0.0, 12.0, 0.0, 0.0], [0.0, 0.0, 0.3, 0.2, 0.0]], np.float32)
    rest = mix.probabilities(s) - mix.given()  # what the scores give: (1 − w) · softmax, summing to 0.8
    np.testing.assert_allclose(rest.sum(axis=1), 0.8, rtol=1e-5)
    assert (rest > 0).all()
    np.testing.assert_allclose(mix.given(np.array([0, 2])), 0.2 * mix.popularity[[0, 2]])


def test_a_sure_answer_takes_less_popularity_than_one_spread_thin():
    """``sureness`` 1: each message's weight is the mix's weight times (1 − its softmax's
    largest probability); what popularity gives is still the mixture's second half."""
    mix = _mix(weight=0.3)
    mix.sureness = 1.0
    s = np.array([[0.0, 0.0, 12.0, 0.0, 0.0], [0.0, 0.0, 0.3, 0.2, 0.0]], np.float32)
    p, rows = mix.mixed(s)
    soft = np.exp(s - s.max(axis=1, keepdims=True))
    soft /= soft.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(rows[:, 0], 0.3 * (1 - soft.max(axis=1)), rtol=1e-5)
    assert rows[0, 0] < 0.001 < 0.2 < rows[1, 0] < 0.3  # 🍕 at 0.99 takes almost none
    np.testing.assert_allclose(p, (1 - rows) * soft + rows * mix.popularity, rtol=1e-5)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(mix.given(np.array([0, 2]), rows), rows * mix.popularity[[0, 2]], rtol=1e-6)
    np.testing.assert_allclose(mix.probabilities(s, sureness=0.0), _mix(weight=0.3).probabilities(s), rtol=1e-6)
    assert (mix.mixed(s, sureness=0.0)[1] == np.float32(0.3)).all()


def test_the_ranker_says_how_much_of_each_top_emoji_popularity_gave(ranker):
    """``Ranked.popular``: the mix's share of each probability; among candidates none."""
    from models.ranker import SUM_OF_TERMS

    text = "our server is down again and the pager won't stop"
    top = ranker.rank([text], 5)[0]
    # the mixture by hand: what the message gives is (1 − w) · softmax(sum of the terms / T)
    z = ranker.scores([text], **SUM_OF_TERMS)[0].astype(np.float64) / ranker.prior.temperature
    soft = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    cols = [ranker.index.positions[r.emoji] for r in top]
    w = ranker.prior.weight * (1 - soft.max()) ** ranker.prior.sureness  # this message's weight
    message, given = (1 - w) * soft[cols], w * ranker.prior.popularity[cols]
    mixed = np.isclose([r.score for r in top], message + given, rtol=1e-4)
    assert mixed.sum() >= 4  # the name slot may have set one score (📟's, just below the fourth)
    np.testing.assert_allclose(np.array([r.popular for r in top])[mixed], (given / (message + given))[mixed], atol=1e-4)
    # filler: what people use most (😍 led until the complaint model read the message as a
    # complaint; the guard holds it back now)
    assert top[0].emoji == "😂" and top[0].popular > 0.5 and "😍" not in [r.emoji for r in top]
    assert min(r.popular for r in top) < 0.1  # 📟: the message's own
    assert all(r.popular == 0.0 for r in ranker.rank([text], 2, candidates=["😍", "📟"])[0])
    # without the mix (`evaluate emojis --no-prior`) the scores are no probabilities: no share
    assert all(r.popular == 0.0 for r in ranker.score_and_rank([text], 5, prior=False)[1][0])


def test_weight_zero_is_the_scores_own_order_and_weight_one_is_popularity():
    rng = np.random.default_rng(0)
    s = rng.normal(size=(6, 5)).astype(np.float32)
    mix = _mix(temperature=1.7)
    assert (np.argsort(-mix.probabilities(s, 0.0), axis=1) == np.argsort(-s, axis=1)).all()
    assert (np.argsort(-mix.probabilities(s, 1.0), axis=1)[:, :3] == [0, 1, 2]).all()


def test_save_and_load_round_trip(tmp_path):
    mix = _mix(weight=0.05, temperature=1.677)
    mix.sureness = 1.0
    mix.save(tmp_path / "prior.npz")
    back = PopularityMix.load(tmp_path / "prior.npz").bind(POSITIONS, 5)
    assert (back.weight, back.temperature, back.sureness, back.emojis) == (0.05, 1.677, 1.0, mix.emojis)
    np.testing.assert_allclose(back.popularity, mix.popularity)
    # a file written before the sureness: the same weight for every message, as it ranked then
    with np.load(tmp_path / "prior.npz") as z:
        np.savez(tmp_path / "old.npz", **{k: z[k] for k in z.files if k != "sureness"})
    assert PopularityMix.load(tmp_path / "old.npz").sureness == 0.0


def test_fit_temperature_recovers_the_temperature_the_answers_were_drawn_with():
    rng = np.random.default_rng(1)
    scores = rng.normal(scale=3.0, size=(4000, 30))
    z = np.exp(scores / 2.5 - (scores / 2.5).max(axis=1, keepdims=True))
    p = z / z.sum(axis=1, keepdims=True)
    gold = [np.array([rng.choice(30, p=row)]) for row in p]
    mix = PopularityMix([], [], 1.0, 0.0).bind({}, 30)
    assert fit_temperature(scores, gold, mix) == pytest.approx(2.5, rel=0.1)


def _row(key: str, value: float, top5: float, mrr: float, mr5: float) -> dict:
    """One row of a choice grid: its setting and its tune figures."""
    return {key: value, "tune": {"top5_accuracy": top5, "mrr": mrr, "macro_recall_at_5": mr5}}


def _both(sentence: float, weight: float, tune: tuple, other: tuple) -> dict:
    """One row of the term-and-mix grid: its weights and its figures on both collections."""
    keys = ("top5_accuracy", "mrr", "macro_recall_at_5")
    return {
        "sentence": sentence,
        "weight": weight,
        "tune": dict(zip(keys, tune, strict=True)),
        "tweeteval_train": dict(zip(keys, other, strict=True)),
    }


def test_the_term_and_the_mix_are_the_best_sum_over_both_collections():
    grid = [
        _both(0.0, 0.0, (0.31, 0.23, 0.14), (0.46, 0.31, 0.31)),  # 1.76
        _both(0.0, 0.2, (0.31, 0.23, 0.13), (0.52, 0.33, 0.31)),  # 1.83
        _both(1.0, 0.0, (0.31, 0.23, 0.17), (0.43, 0.29, 0.32)),  # 1.75: the best tune rows alone
        _both(1.0, 0.25, (0.315, 0.235, 0.137), (0.525, 0.333, 0.324)),  # 1.869
        _both(1.0, 0.4, (0.30, 0.23, 0.12), (0.534, 0.34, 0.31)),  # 1.834: the best TweetEval top-5 alone
    ]
    assert choose_sentence_and_mix(grid) == (1.0, 0.25, 0.0)
    assert choose_sentence_and_mix(grid[:3]) == (0.0, 0.2, 0.0)
    tie = [grid[1], {**grid[1], "sentence": 0.5}, {**grid[1], "weight": 0.3}, {**grid[1], "sureness": 1.0}]
    # on a tie the lighter term, then the lighter mix, then the one that yields less
    assert choose_sentence_and_mix(tie) == (0.0, 0.2, 0.0)
    yielding = {**grid[3], "sureness": 1.0, "tweeteval_train": {**grid[3]["tweeteval_train"], "mrr": 0.34}}
    assert choose_sentence_and_mix([*grid, yielding]) == (1.0, 0.25, 1.0)
    no_term = [{k: v for k, v in g.items() if k != "sentence"} for g in grid[:2]]  # a model without the term
    assert choose_sentence_and_mix(no_term) == (0.0, 0.2, 0.0)


def test_the_shipped_ranker_mixes_whole_catalog_scores_only(ranker):
    mix = ranker.prior
    assert mix is not None and 0 < mix.weight < 1 and mix.temperature > 0
    from models.ranker import NO_GUARDS

    texts = ["my flight got cancelled, stuck at the airport", "ok"]
    raw = ranker.scores(texts, prior=False, **NO_GUARDS)  # the guards act after the mix (the first is a complaint)
    np.testing.assert_allclose(ranker.scores(texts, **NO_GUARDS), mix.probabilities(raw), rtol=1e-5)
    cands = ["✈️", "😂", "❤️"]  # among given candidates (TweetEval, airline) it stays out
    np.testing.assert_allclose(ranker.scores(texts, cands), ranker.scores(texts, cands, prior=False))
    assert ranker.rank(texts[:1], k=1)[0][0].emoji == "✈️"  # a sure answer stays first


def test_the_name_slot_threshold_is_the_best_macro_recall_that_costs_nothing_that_matters():
    from training.catalog_head import choose_slot_threshold

    row = functools.partial(_row, "threshold")
    grid = [
        row(0.0, 0.31, 0.228, 0.13),
        row(0.5, 0.30, 0.227, 0.14),
        row(0.7, 0.309, 0.228, 0.14),
        row(0.8, 0.31, 0.228, 0.14),
    ]
    assert choose_slot_threshold(grid, 0.002, 0.007) == 0.8  # 0.5 costs top-5; 0.7 and 0.8 tie: the rarer slot
    # no gain, no cost that matters (the shipped refit's grid): on, at the higher of a tie
    flat = [grid[0], row(0.8, 0.307, 0.2279, 0.1295), row(0.9, 0.3091, 0.228, 0.1298), row(1.0, 0.3091, 0.228, 0.1298)]
    assert choose_slot_threshold(flat, 0.002, 0.007) == 1.0
    costly = [grid[0], row(0.9, 0.307, 0.228, 0.13), row(1.0, 0.31, 0.228, 0.12)]  # top-5, then macro-recall
    assert choose_slot_threshold(costly, 0.002, 0.007) == 0.0  # off
