"""The emoji-name match (models.names) and how the ranker uses it."""

import numpy as np
import pytest

from models.artifacts import read_manifest
from models.names import NameMatch, stem


@pytest.fixture(scope="module")
def names(catalog):
    words = ["<pad>", "<oov>", "pizza", "tacos", "face", "coffee", "the", "birthday", "<hashtag>", "hearts"]
    return NameMatch.build(list(catalog), words, weight=2.0), words, catalog


def test_a_specific_name_points_at_its_emoji_and_a_generic_word_at_nothing_much(names):
    m, words, catalog = names
    ids = np.array([[2, 3, 0, 0], [4, 6, 0, 0], [9, 0, 0, 0]], np.int32)  # "pizza tacos", "face the", "hearts"
    s = m.scores(ids)
    col = {c: i for i, c in enumerate(catalog.chars)}
    assert s[0, col["🍕"]] == pytest.approx(1.0) and s[0, col["🌮"]] == pytest.approx(1.0)  # plural folded
    assert s[1].max() == 0  # "face" and "the" name no emoji in particular
    assert 0 < s[2].max() < 0.3 and (s[2] > 0).sum() > 10  # "heart" names many, each a little


def test_a_word_said_twice_counts_once_and_unknown_words_not_at_all(names):
    m, _, _ = names
    once = m.scores(np.array([[5, 0, 0]], np.int32))
    twice = m.scores(np.array([[5, 5, 1]], np.int32))
    np.testing.assert_array_equal(once, twice)
    dense = np.asarray(m.matrix.todense())
    np.testing.assert_allclose(once[0], dense[5])  # the same as the sparse product


def test_save_and_load_keep_matrix_and_weight(names, tmp_path):
    m, _, _ = names
    m.save(tmp_path / "n.npz")
    back = NameMatch.load(tmp_path / "n.npz")
    assert back.weight == 2.0 and (back.matrix != m.matrix).nnz == 0


def test_stem_folds_plural_s_only():
    assert [stem(w) for w in ("tacos", "glass", "bus", "cats", "is")] == ["taco", "glass", "bus", "cat", "is"]


def test_the_shipped_ranker_adds_names_to_whole_catalog_scores_only(ranker):
    assert ranker.names is not None and ranker.names.weight > 0  # chosen on the tune rows
    text = ["coffee first, then the standup"]
    with_names = ranker.scores(text, prior=False, meanings=False)
    without = ranker.scores(text, names=False, prior=False)
    col = ranker.index.positions["☕"]
    match = ranker.names.scores(ranker.featurizer.featurize(text).word_ids)[0, col]
    assert match > 0 and with_names[0, col] - without[0, col] == pytest.approx(ranker.names.weight * match, rel=1e-5)
    assert ranker.rank(text, k=1)[0][0].emoji == "☕"
    cands = ["☕", "😂", "❤️"]  # among given candidates (TweetEval, airline) the names stay out
    np.testing.assert_allclose(ranker.scores(text, cands), ranker.scores(text, cands, names=False))


def test_names_built_for_another_vocabulary_are_ignored(tmp_path):
    import shutil

    from models.artifacts import DEFAULT_DIR, VOCAB_FILE
    from models.ranker import TextRanker

    folder = tmp_path / "artifacts"
    shutil.copytree(DEFAULT_DIR, folder)
    words = (folder / VOCAB_FILE).read_text(encoding="utf-8").split("\n")[:-1]
    words[2], words[3] = words[3], words[2]  # `train sqam` ran again: the word ids moved
    (folder / VOCAB_FILE).write_text("\n".join(words) + "\n", encoding="utf-8")
    assert TextRanker(folder).names is None


def test_everyday_words_and_two_letter_codes_hardly_count(catalog):
    words = ["<pad>", "<oov>", "is", "you", "pager"]
    col = {c: i for i, c in enumerate(catalog.chars)}
    plain = NameMatch.build(list(catalog), words)
    assert plain.scores(np.array([[2]], np.int32))[0, col["🇮🇸"]] == 0  # flag-is: "is" is no name word
    rare = NameMatch.build(list(catalog), words, doc_freq=np.array([0, 0, 0.0, 0.12, 0.9]))
    s = rare.scores(np.array([[3, 4]], np.int32))[0]
    assert s[col["📟"]] > 5 * s.max(where=np.arange(len(s)) != col["📟"], initial=0)  # "pager" beats "you"


def test_strongest_is_each_texts_best_summed_match(names):
    m, _, catalog = names
    ids = np.array([[2, 3, 2, 0], [4, 6, 0, 0], [9, 7, 0, 0]], np.int32)  # "pizza tacos pizza", "face the", ...
    cols, match = m.match(ids).strongest()
    full = m.scores(ids)
    assert cols[1] == -1 and match[1] == 0  # names nothing
    for r in (0, 2):
        assert match[r] == pytest.approx(full[r].max()) and full[r, cols[r]] == pytest.approx(full[r].max())


def test_cells_say_which_of_the_given_emojis_each_given_text_names(names):
    m, _, catalog = names
    ids = np.array([[2, 3, 0, 0], [4, 6, 0, 0], [5, 0, 0, 0]], np.int32)  # "pizza tacos", "face the", "coffee"
    col = {c: i for i, c in enumerate(catalog.chars)}
    cols = np.array([col["🍕"], col["☕"], col["🌮"]])
    cells = m.match(ids).cells(np.array([2, 0, 1]), cols)
    assert cells.tolist() == [[False, True, False], [True, False, True], [False, False, False]]
    assert m.match(ids).cells(np.array([], np.int64), cols).shape == (0, 3)
    np.testing.assert_array_equal(m.match(ids).cells(np.arange(3), np.arange(len(catalog.chars))), m.scores(ids) > 0)


def test_the_name_slot_gives_a_strongly_named_emoji_the_fifth_place_only():
    from models.names import give_slot

    s = np.array([[9.0, 8.0, 7.0, 6.0, 5.0, 4.0, 1.0]] * 3, np.float32)
    cols = np.array([6, 1, 6])  # row 0: far down; row 1: already second; row 2: matched too weakly
    match = np.array([0.9, 0.9, 0.5], np.float32)
    out = s.copy()
    give_slot(out, cols, match, 0.8)
    order = np.argsort(-out, axis=1)
    assert list(order[0][:5]) == [0, 1, 2, 3, 6]  # fifth, just below the fourth
    assert out[0, 6] < out[0, 3] and out[0, 6] > out[0, 4]
    np.testing.assert_array_equal(out[1:], s[1:])  # in the top 4 already, or too weak: untouched
    np.testing.assert_array_equal(np.delete(out[0], 6), np.delete(s[0], 6))  # nothing else moves


def test_a_ranker_with_a_slot_threshold_gives_the_name_slot_after_the_mix():
    """The shipped refit's tune rows chose 1.0 (a word that names the emoji alone); with
    the threshold the recipe measured on val chose (0.8) the ranker gives the fifth place
    to an emoji that weaker name words point to too."""
    from models.ranker import TextRanker

    ranker = TextRanker()
    assert ranker.name_slot == read_manifest()["catalog_head"]["name_slot"]["threshold"]
    ranker.name_slot = 0.8
    text = ["my cat knocked over the plant"]
    # the guards off: the complaint model reads the message as a complaint, and the guard
    # that moves 😍 out of the top 4 would move the slotted emoji up into it
    unguarded = dict(grave=False, complaint=False)
    top = [r.emoji for r in ranker.score_and_rank(text, 5, **unguarded)[1][0]]
    plain = ranker.scores(text, name_slot=False, **unguarded)
    assert "🪴" not in [ranker.chars[i] for i in np.argsort(-plain[0])[:5]]  # the ranking alone misses it
    assert top[4] == "🪴" and top[:4] == [ranker.chars[i] for i in np.argsort(-plain[0])[:4]]
    cands = ["🪴", "😂", "❤️"]  # among given candidates it stays out
    np.testing.assert_allclose(ranker.scores(text, cands), ranker.scores(text, cands, name_slot=False))


def test_the_shipped_ranking_shows_an_emoji_the_message_names():
    """A message that names an emoji the tweets seldom use gets it in its top 5 (the name
    slot, or the meaning match, where a word that is the emoji's name counts fully), where
    the popular emojis would fill every place."""
    from models.ranker import TextRanker

    ranker = TextRanker()
    for text, named in (("our server is down again and the pager won't stop", "📟"),
                        ("who wants to play chess at lunch", "♟️")):  # fmt: skip
        assert named in [r.emoji for r in ranker.rank([text], k=5)[0]], text
        plain = ranker.scores([text], name_slot=False, meanings=False)
        assert named not in [ranker.chars[i] for i in np.argsort(-plain[0])[:5]]


def test_the_meaning_match_finds_the_emoji_a_word_means_not_names(catalog):
    """all-MiniLM-L6-v2 (run for real) puts *married* near 💒 "wedding" and *snowing* near 🌨️
    "cloud with snow", which no name spells; an exact name counts fully, padding not at all."""
    from training.names import MEANING_FLOOR, meaning_similarity

    words = ["<pad>", "<oov>", "married", "snowing", "pizza", "the"]
    sim = meaning_similarity(words, list(catalog), progress=False).toarray()
    col = {c: i for i, c in enumerate(catalog.chars)}
    assert sim.shape == (len(words), len(catalog.chars))
    assert sim[0].max() == 0 and sim[1].max() == 0
    assert sim[2, col["💒"]] > 0 and sim[2].argmax() == col["💒"]
    assert sim[3, col["🌨️"]] > 0
    assert sim[4, col["🍕"]] == pytest.approx(1.0, abs=1e-3)  # the word is the name: cosine 1
    assert sim[2, col["🍕"]] == 0 and sim[4, col["💒"]] == 0  # far apart in meaning: no cell
    assert ((sim == 0) | ((sim > 0) & (sim <= 1.0 + 1e-6))).all() and MEANING_FLOOR == 0.5


def test_the_meaning_weight_is_the_best_macro_recall_that_costs_top5_and_mrr_nothing_that_matters():
    from training.names import choose_meaning_weight

    def row(w, top5, mrr, recall):
        return {"weight": w, "top5_accuracy": top5, "mrr": mrr, "macro_recall_at_5": recall}

    grid = [
        row(0.0, 0.30, 0.22, 0.10),
        row(2.0, 0.30, 0.219, 0.12),
        row(4.0, 0.29, 0.22, 0.15),
        row(6.0, 0.30, 0.219, 0.12),
    ]
    assert choose_meaning_weight(grid) == 2.0  # 4.0 costs top-5 0.01; 6.0 ties 2.0: the smaller
    assert choose_meaning_weight([row(0.0, 0.3, 0.22, 0.1), row(1.0, 0.29, 0.2, 0.2)]) == 0.0  # off


def test_the_shipped_ranker_adds_the_meaning_match_under_the_names(ranker):
    """Shipped with a weight; `meanings=False` leaves it out, and so does `names=False`."""
    assert ranker.meanings is not None and ranker.meanings.weight > 0
    text = ["we're getting married next spring"]
    full = ranker.scores(text, prior=False, name_slot=False)
    without = ranker.scores(text, prior=False, name_slot=False, meanings=False)
    wedding = ranker.index.positions["💒"]
    assert full[0, wedding] > without[0, wedding]
    no_names = ranker.scores(text, prior=False, name_slot=False, names=False)
    assert np.array_equal(no_names, ranker.scores(text, prior=False, name_slot=False, names=False, meanings=False))
    assert read_manifest()["names"]["meanings"]["weight"] == ranker.meanings.weight


def test_meanings_of_another_vocabulary_are_ignored_and_their_cosines_not_reused(tmp_path, catalog):
    """A meaning match whose rows index other words is left out of the ranking, and `train
    names` embeds the words again rather than reuse cosines kept for other words or names."""
    import shutil

    from models.artifacts import DEFAULT_DIR, MEANINGS_FILE
    from models.names import NameMatch
    from models.ranker import TextRanker
    from training.names import MEANING_FLOOR, _cached_similarity

    folder = tmp_path / "artifacts"
    shutil.copytree(DEFAULT_DIR, folder)
    ranker = TextRanker(folder)
    words = ranker.featurizer.vocab.words
    cached = _cached_similarity(folder / MEANINGS_FILE, words, list(catalog), MEANING_FLOOR)
    assert cached is not None and cached.shape == (len(words), len(catalog.chars))
    assert _cached_similarity(folder / MEANINGS_FILE, words[::-1], list(catalog), MEANING_FLOOR) is None
    assert _cached_similarity(folder / MEANINGS_FILE, words, list(catalog)[:-1], MEANING_FLOOR) is None
    assert _cached_similarity(folder / MEANINGS_FILE, words, list(catalog), 0.6) is None

    other = NameMatch.load(folder / MEANINGS_FILE)
    other.vocab_digest = "another vocabulary"
    (folder / MEANINGS_FILE).unlink()
    other.save(folder / MEANINGS_FILE)
    assert TextRanker(folder).meanings is None and TextRanker(folder).names is not None


def test_a_text_names_an_emoji_of_a_pair_wholly_where_it_says_every_word_of_one_of_its_names(catalog):
    """*thumbs up* (what the tokenizer spells 👍 as) names 👍 wholly and 👎 "thumbs down" only
    in part; *up* is a name word now, so it also credits 👍 more. Only the emojis of an
    opposite pair need to know (☕ and 🆙 are named, but have no opposite); a flag's
    two-letter code is no name word."""
    words = ["<pad>", "<oov>", "thumbs", "up", "down", "coffee", "chart", "increasing", "is"]
    m = NameMatch.build(list(catalog), words)
    col = {c: i for i, c in enumerate(catalog.chars)}
    up, down = m.scores(np.array([[2, 3], [2, 4]], np.int32))
    assert up[col["👍"]] > up[col["👎"]] > 0 and down[col["👎"]] > down[col["👍"]] > 0
    hits = m.match(np.array([[2, 3, 5, 0], [6, 7, 0, 0], [5, 8, 0, 0]], np.int32))
    whole = {(int(t), catalog.chars[c]) for t, c, w in zip(hits.rows, hits.cols, hits.whole, strict=True) if w}
    assert whole == {(0, "👍"), (1, "📈")}
    assert {"☕", "🆙", "👎"} <= {catalog.chars[c] for c in hits.cols[hits.rows == 0]}  # named, not wholly 👎
    assert m.scores(np.array([[8]], np.int32)).max() == 0  # "flag-is": no "is"


def test_opposites_are_names_that_differ_by_a_word_and_its_partner(catalog):
    from models.names import opposite_pairs

    pairs = {(catalog.chars[a], catalog.chars[b]) for a, b in opposite_pairs(list(catalog))}
    for a, b in (("👍", "👎"), ("📈", "📉"), ("⬆️", "⬇️"), ("👆", "👇"), ("🔺", "🔻")):
        assert (a, b) in pairs and (b, a) in pairs
    for a, b in (("👈", "👉"), ("❤️", "💙"), ("✅", "❌")):  # a pointing pair, two hearts, *cross* a verb
        assert (a, b) not in pairs and (b, a) not in pairs
    assert len(pairs) == 24  # 12 pairs, both ways


def test_a_text_that_names_an_emoji_wholly_holds_back_its_opposite_unless_it_names_both(catalog):
    words = ["<pad>", "<oov>", "thumbs", "up", "down", "great"]
    m = NameMatch.build(list(catalog), words)
    ids = np.array([[5, 2, 3, 0], [2, 4, 0, 0], [2, 3, 2, 4], [5, 0, 0, 0]], np.int32)
    opposed = {t: {catalog.chars[c] for c in cols} for t, cols in m.match(ids).opposed(m.opposites)}
    assert opposed == {0: {"👎"}, 1: {"👍"}}  # "👍 or 👎?" names both, "great" neither


def test_save_and_load_keep_what_is_named_wholly_and_the_opposites_and_an_old_file_reads(catalog, tmp_path):
    m = NameMatch.build(list(catalog), ["<pad>", "<oov>", "thumbs", "up", "pizza"], weight=2.0)
    m.save(tmp_path / "n.npz")
    back = NameMatch.load(tmp_path / "n.npz")
    assert (back.cover != m.cover).nnz == 0 and np.array_equal(back.owner, m.owner)
    assert np.array_equal(back.opposites, m.opposites) and len(m.opposites) > 10
    ids = np.array([[2, 3, 4, 0]], np.int32)  # "thumbs up pizza"
    assert back.match(ids).whole.any() and np.array_equal(back.scores(ids), m.scores(ids))
    NameMatch(m.matrix, m.weight, m.vocab_digest).save(tmp_path / "old.npz")  # a file from before
    old = NameMatch.load(tmp_path / "old.npz")
    assert old.cover is None and len(old.opposites) == 0 and old.match(ids).whole is None
    np.testing.assert_array_equal(old.scores(ids), m.scores(ids))  # the same scores, no guard


def test_the_shipped_ranking_never_answers_a_thumb_with_its_opposite(ranker):
    """What a person sees: no 👎 for "great job 👍", no 👍 for "this is bad 👎" (the opposite
    guard: without it, the SQAM's and the sentence term's 👍 stood third), and `--explain`
    says which guard held it back."""
    for text, opposite in (("great job 👍", "👎"), ("this is bad 👎", "👍"), ("thumbs down", "👍")):
        assert opposite not in [r.emoji for r in ranker.rank([text], k=5)[0]], text
    unguarded = ranker.score_and_rank(["this is bad 👎"], 5, opposite=False)[1][0]
    assert "👍" in [r.emoji for r in unguarded]
    held = [x for x in ranker.explain("this is bad 👎").emojis if x.held_back]
    assert ("👍", "opposite") in [(x.emoji, x.held_back) for x in held]


def test_a_word_and_its_plural_count_once_towards_a_whole_name(catalog):
    """*thumbs* and *thumb* are one word of "thumbs down": saying both does not name 👎 wholly
    (it did, and 👎 stayed next to 👍); *triangles triangle* is not 🔺 "small red triangle",
    and *small red triangle* is."""
    words = ["<pad>", "<oov>", "thumbs", "thumb", "up", "my", "red", "triangles", "triangle", "small"]
    m = NameMatch.build(list(catalog), words)
    ids = np.array([[5, 2, 3, 4], [6, 7, 8, 0], [9, 6, 8, 0]], np.int32)
    opposed = {t: {catalog.chars[c] for c in cols} for t, cols in m.match(ids).opposed(m.opposites)}
    assert opposed == {0: {"👎"}, 2: {"🔻"}}


def test_the_opposite_guard_reads_the_names_even_where_their_term_is_off(ranker):
    """`evaluate emojis --no-names` leaves the names' term out, not the guard."""
    off = [r.emoji for r in ranker.score_and_rank(["thumbs down"], 5, names=False, opposite=False)[1][0]]
    guarded = [r.emoji for r in ranker.score_and_rank(["thumbs down"], 5, names=False)[1][0]]
    assert "👍" in off and "👍" not in guarded
