"""Complaints (models.complaint): the bot does not answer a message that reads negative with
😍, 😘, 😊 or 🎉, with the shipped model and its real ranking."""

from __future__ import annotations

import numpy as np
import pytest

from models.complaint import DELIGHT, THRESHOLD, stems, valence_of

COMPLAINTS = [
    "the deploy failed again, rolling back",
    "lakers lost again tonight",
    "the server is down again, everything is on fire",
    "traffic was terrible this morning",
    "I hate mondays",
    "ugh, my train is late again",
    "my flight got cancelled, stuck at the airport",
    "my flight got canceled, stuck at the airport",  # the lexicon knows the British spelling only
    "the server crashed again",  # the lexicon knows *crash*, not *crashed*
    "my laptop keeps crashing",
    "more delays on the northern line",
    "the roof is leaking again",
    "I'm not happy with this at all",  # a positive word under a negation
    "not a great start to the week",
    "so sad 😢",
    "we don't love the new process",  # the tokenizer's n't is a negation too
    "I love my job but today was terrible",  # what follows a *but* weighs more
]
NOT_COMPLAINTS = [
    "happy birthday Sam, have a great one!",
    "pizza party in the kitchen at noon",
    "the build is green, shipping it",
    "I love this song so much it hurts",
    "good morning team, the coffee machine is fixed",
    "it was terrible but I loved it",
]


@pytest.fixture(scope="module")
def ranker():
    from models.ranker import TextRanker

    return TextRanker()


def _tone(ranker, texts):
    return ranker.tone.compound(ranker.featurizer.featurize(texts).word_ids)


# What the lexicon reads as neutral or glad and the complaint model (trained on the airline
# tweets' sentiment, `train complaint`) reads as a complaint.
MODEL_COMPLAINTS = [
    "our server is down again and the pager won't stop",  # *won't stop*: a negated negative word
    "the wifi is not working",
    "the printer is jammed again",
    "my flight is delayed 3 hours",
    "the pizza was cold and late",
]


def test_a_message_that_reads_negative_is_a_complaint_and_a_glad_one_is_not(ranker):
    for texts, negative in ((COMPLAINTS, True), (NOT_COMPLAINTS, False)):
        for text, tone in zip(texts, _tone(ranker, texts), strict=True):
            assert (tone <= THRESHOLD) == negative, (text, tone)
    batch = ranker.featurizer.featurize(NOT_COMPLAINTS + COMPLAINTS)
    assert ranker.complaints(batch).tolist() == list(range(len(NOT_COMPLAINTS), len(NOT_COMPLAINTS + COMPLAINTS)))


def test_the_complaint_model_reads_what_the_lexicon_misses(ranker):
    """The pager, the wifi, the printer: no word the lexicon scores says they are bad news,
    and until the complaint model they ranked 😍 first or second."""
    assert ranker.complaint_model is not None, ranker.complaint_note
    assert ranker.complaint_model.threshold == THRESHOLD
    assert (_tone(ranker, MODEL_COMPLAINTS) > THRESHOLD).all()
    batch = ranker.featurizer.featurize(MODEL_COMPLAINTS)
    assert ranker.complaints(batch).tolist() == list(range(len(MODEL_COMPLAINTS)))
    unguarded = [[x.emoji for x in row] for row in ranker.score_and_rank(MODEL_COMPLAINTS, 5, complaint=False)[1]]
    assert sum("😍" in row for row in unguarded) >= 3, unguarded
    for text, row in zip(MODEL_COMPLAINTS, ranker.rank(MODEL_COMPLAINTS), strict=True):
        assert not {x.emoji for x in row} & set(DELIGHT), (text, [x.emoji for x in row])
    # the model's probability is a logistic regression over the tower's inputs
    x = ranker.encoder.inputs(batch)
    p = ranker.complaint_model.probability(x)
    want = 1.0 / (1.0 + np.exp(-(x.astype(np.float64) @ ranker.complaint_model.weights + ranker.complaint_model.bias)))
    np.testing.assert_allclose(p, want, rtol=1e-5)
    assert (p >= ranker.complaint_model.cutoff).all()


def test_without_the_complaint_model_the_lexicon_alone_reads_complaints(tmp_path):
    """A version without `complaint_model.npz`, or with one fitted on another SQAM's inputs
    (`train sqam` ran since), reads complaints by the lexicon alone."""
    import shutil

    from models.artifacts import COMPLAINT_FILE, DEFAULT_DIR
    from models.complaint import ComplaintModel
    from models.ranker import TextRanker

    folder = tmp_path / "artifacts"
    shutil.copytree(DEFAULT_DIR, folder)
    model = ComplaintModel.load(folder / COMPLAINT_FILE)
    model.inputs_digest = "0" * 16
    model.save(folder / COMPLAINT_FILE)
    stale = TextRanker(folder)
    assert stale.complaint_model is None and "another SQAM" in stale.complaint_note
    (folder / COMPLAINT_FILE).unlink()
    none = TextRanker(folder)
    assert none.complaint_model is None and "lexicon alone" in none.complaint_note
    for r in (stale, none):
        assert r.complaints(r.featurizer.featurize(MODEL_COMPLAINTS)).tolist() == []
        assert "😍" in [x.emoji for x in r.rank(MODEL_COMPLAINTS[:1])[0]]


def test_the_complaint_model_round_trips_and_choose_takes_the_loosest_cutoff_within_the_rule(tmp_path):
    from models.complaint import ComplaintModel
    from training.complaint import NEVER, choose

    m = ComplaintModel(np.array([1.0, -2.0], np.float32), 0.5, 0.9, -0.3, "abc")
    m.save(tmp_path / "c.npz")
    back = ComplaintModel.load(tmp_path / "c.npz")
    assert (back.weights.tolist(), back.bias, back.cutoff, back.threshold, back.inputs_digest) == (
        [1.0, -2.0], 0.5, pytest.approx(0.9), pytest.approx(-0.3), "abc")  # fmt: skip
    x = np.array([[3.0, 0.0], [0.0, 3.0]], np.float32)
    assert back.flags(x).tolist() == [True, False]

    def row(cutoff, complaints, tune_top5, te_mrr):
        lost = lambda top5, mrr: {"lost": {"top5": top5, "mrr": mrr}}  # noqa: E731
        return {
            "cutoff": cutoff, "complaints": complaints, "tune": lost(tune_top5, 0.0), "tweeteval": lost(0.0, te_mrr)
        }  # fmt: skip

    grid = [row(NEVER, 10, 0.0, 0.0), row(0.9, 20, 0.001, 0.0), row(0.85, 30, 0.002, 0.001), row(0.8, 40, 0.0025, 0.0)]
    assert choose(grid, 0.002)["cutoff"] == 0.85  # 0.8 costs the tune rows too much top-5
    grid[2]["tweeteval"]["lost"]["mrr"] = 0.003
    assert choose(grid, 0.002)["cutoff"] == 0.9
    assert choose(grid[:1], 0.002)["cutoff"] == NEVER  # the lexicon alone always keeps the rule


def test_the_tone_is_vaders_lexicon_negation_and_but(ranker, data_dir):
    """On a plain message the tone is VADER's compound, negations and *but* included; over
    TweetEval's tweets, where VADER's further rules (capitals, boosters, punctuation) weigh
    in, the two correlate closely and mostly agree on what reads negative."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    vader = SentimentIntensityAnalyzer()
    plain = [
        "traffic was terrible this morning",
        "I'm not happy with this at all",
        "I love this",
        "I love my job but today was terrible",
        "it was terrible but I loved it",
        "good but bad but good",  # the first *but* counts
        "the marathon was brutal but I finished",
    ]
    assert _tone(ranker, plain) == pytest.approx([vader.polarity_scores(t)["compound"] for t in plain], abs=0.002)
    texts = (data_dir / "tweeteval_emoji" / "val_text.txt").read_text(encoding="utf-8").splitlines()
    ours = _tone(ranker, texts)
    theirs = np.asarray([vader.polarity_scores(t)["compound"] for t in texts])
    assert np.corrcoef(ours, theirs)[0, 1] > 0.9
    both = ((ours <= THRESHOLD) & (theirs <= THRESHOLD)).sum()
    assert both > 0.8 * (ours <= THRESHOLD).sum() and both > 0.8 * (theirs <= THRESHOLD).sum()


def test_the_shipped_ranking_holds_back_delight_for_complaints(ranker):
    r = ranker
    held = set(DELIGHT)
    before = r.score_and_rank(COMPLAINTS, 5, complaint=False)[1]
    after = r.score_and_rank(COMPLAINTS, 5)[1]
    # without the guard, the tweets' habits show (😍 first for a lost game)
    assert sum(1 for row in before for x in row if x.emoji in held) >= len(COMPLAINTS) // 2
    for text, row in zip(COMPLAINTS, after, strict=True):
        assert not {x.emoji for x in row} & held, (text, [x.emoji for x in row])
    # ❤️ and 😂 are not held back: sympathy, and laughing at one's own bad luck
    assert any(x.emoji in ("❤️", "😂") for row in after for x in row)
    # everything else ranks as before: same emojis, same order
    assert [[x.emoji for x in row] for row in r.rank(NOT_COMPLAINTS)] == [
        [x.emoji for x in row] for row in r.score_and_rank(NOT_COMPLAINTS, 5, complaint=False)[1]
    ]


def test_an_emoji_of_delight_the_message_names_is_its_topic_and_stays(ranker):
    """☀️ is a cheer on a sick day and the topic of a complaint about the sun: the guard
    holds back only what the message does not name (the name match)."""
    r = ranker
    sick, sunny = "out sick today, back tomorrow", "this sunny weather is killing me"
    assert (_tone(r, [sick, sunny]) <= THRESHOLD).all()
    # the top 10: on the sick day ☀️ is seventh without the guard
    unguarded = [[x.emoji for x in row] for row in r.score_and_rank([sick, sunny], 10, complaint=False)[1]]
    assert "☀️" in unguarded[0] and "☀️" in unguarded[1]
    guarded = [[x.emoji for x in row] for row in r.rank([sick, sunny], 10)]
    assert "☀️" not in guarded[0], guarded[0]  # the sick day: held back
    assert "☀️" in guarded[1], guarded[1]  # named by "sunny": kept
    assert not set(guarded[1]) & (set(DELIGHT) - {"☀️", "🌞"})  # the rest of delight still held


def test_a_named_emoji_of_delight_stays_only_where_it_ranks_above_the_plainer_ones_named():
    """named_topic keeps an emoji of delight the text names only where the ranking puts it
    above every emoji outside delight that the text also names."""
    from models.complaint import named_topic
    from models.names import NameHits

    # emojis 0 and 1 are delight; 2 and 3 are not. Text 0 names 0 and 2, text 1 names 1
    # and 3, text 2 names 0 alone, text 3 names 1 and is not negative.
    hits = NameHits(np.array([0, 0, 1, 1, 2, 3]), np.array([0, 2, 1, 3, 0, 1]), np.ones(6, np.float32), 4, 4)
    s = np.array([[0.5, 0.0, 0.2, 0.0], [0.0, 0.1, 0.0, 0.3], [0.1, 0.0, 0.9, 0.0], [0.0, 0.1, 0.0, 0.0]])
    rows, cols = np.array([0, 1, 2]), np.array([0, 1])
    keep = named_topic(hits, s, rows, cols)
    # text 0: 0 outranks the named 2, kept; text 1: 1 under the named 3, held back; text 2:
    # 0 is the only emoji named (2 scores higher but is not named), kept
    assert keep.tolist() == [[True, False], [False, False], [True, False]]
    # the names alone would have kept text 1's emoji 1 too
    assert hits.cells(rows, cols).tolist() == [[True, False], [False, True], [True, False]]


def test_a_name_shared_with_a_plainer_emoji_does_not_keep_delight(ranker):
    """*cat* names 🐱 and 😻, *heart* 💔 and the love hearts: the plainer emoji is the
    topic, and the heart-eyed cat on a dead cat or 😍 on a broken heart would mock it."""
    r = ranker
    texts = ["my cat is sick and I'm so worried", "my heart is broken, worst day ever", "my eyes hurt so bad"]
    assert (_tone(r, texts) <= THRESHOLD).all()
    unguarded = [[x.emoji for x in row] for row in r.score_and_rank(texts, 5, complaint=False)[1]]
    assert {"😻", "😍"} & set(unguarded[0] + unguarded[1]), unguarded  # the tweets' habit
    for text, row in zip(texts, r.rank(texts), strict=True):
        assert not {x.emoji for x in row} & set(DELIGHT), (text, [x.emoji for x in row])
    assert "🐱" in [x.emoji for x in r.rank(texts[:1])[0]]  # the topic stays
    assert "💔" in [x.emoji for x in r.rank(texts[1:2])[0]]


def test_among_given_candidates_nothing_is_held_back(ranker):
    """The airline benchmark's 🎉 stands for a glad tweet among three: given candidates
    are the caller's choice, and the guard is for the bot's own whole-catalog choice."""
    r = ranker
    text = ["@united lost my bag again, worst airline ever"]
    cands = ["🎉", "😈", "😡"]
    assert r.scores(text, cands).tolist() == r.scores(text, cands, complaint=False).tolist()


def test_an_inflection_the_lexicon_lacks_reads_as_its_stem():
    """*crashed*, *delays*, *leaking* take the valence of *crash*, *delay*, *leak*; a cut
    that would leave another word (*wines* → *win*, *faded* → *fad*) is not made."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    lexicon = SentimentIntensityAnalyzer().lexicon
    for word, stem in [("crashed", "crash"), ("crashing", "crash"), ("crashes", "crash"), ("delays", "delay"),
                       ("leaking", "leak"), ("injuries", "injury"), ("robbed", "rob"), ("banning", "ban"),
                       ("witches", "witch")]:  # fmt: skip
        assert word not in lexicon and stem in lexicon, word
        assert stem in stems(word) and valence_of(word, lexicon) == lexicon[stem], word
    assert "win" not in stems("wines") and "fad" not in stems("faded") and "kil" not in stems("killed")
    assert stems("news") == stems("bugs") == []  # four letters or fewer: left as they are
    assert valence_of("terrible", lexicon) == lexicon["terrible"]  # the lexicon's own first
    assert valence_of("canceled", lexicon) == lexicon["cancelled"]  # then the other spelling
    assert valence_of("printer", lexicon) == 0.0
