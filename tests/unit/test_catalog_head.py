"""The catalog head (models.catalog_head) and how the ranker uses it."""

import numpy as np
import pytest
from scipy.sparse import csr_matrix

from models.catalog_head import CatalogHead, SparseProduct, idf_digest
from models.ranker import top_k


def _head(rng, buckets=50, emojis=("🍕", "☕", "😂")):
    w = rng.normal(size=(buckets, len(emojis))).astype(np.float32)
    idf = rng.uniform(1, 5, buckets).astype(np.float32)
    return CatalogHead.from_dense(list(emojis), w, np.array([0.5, -0.2, 0.1]), 2.0, idf, keep=60), w, idf


def test_pruning_keeps_the_weights_that_add_most_to_a_score():
    rng = np.random.default_rng(0)
    head, w, idf = _head(rng)
    kept = head.weights.toarray() != 0
    assert kept.sum() == 60
    importance = np.abs(w) * idf[:, None]
    assert importance[kept].min() >= importance[~kept].max()  # |w| · idf, not |w|
    np.testing.assert_allclose(head.weights.toarray()[kept], w[kept])
    assert head.idf_digest == idf_digest(idf)


def test_scores_add_to_and_unknown_emojis():
    rng = np.random.default_rng(1)
    head, _, _ = _head(rng)
    positions = {"😂": 0, "🍕": 3, "🐶": 1}  # ☕ is not in this catalog: its column goes
    head.bind(positions, 5)
    assert head.emojis == ["🍕", "😂"] and list(head.columns) == [3, 0]
    rows = csr_matrix(rng.uniform(size=(4, 50)).astype(np.float32))
    s = head.scores(rows)
    dense = rows.toarray() @ head.weights.toarray() + head.bias
    np.testing.assert_allclose(s[:, [3, 0]], dense, rtol=1e-5)
    assert (s[:, [1, 2, 4]] == head.unseen).all()  # emojis without a column: "not this emoji"
    base = rng.normal(size=(4, 5)).astype(np.float32)
    added = base.copy()
    head.add_to(added, rows, 2.0)
    np.testing.assert_allclose(added, base + 2.0 * (s - head.unseen), rtol=1e-5, atol=1e-5)
    # bound again to another catalog, the head adds into that catalog's columns
    head.bind({"😂": 4, "🍕": 1}, 6)
    again = np.zeros((4, 6), np.float32)
    head.add_to(again, rows, 2.0)
    np.testing.assert_allclose(again[:, [1, 4]], 2.0 * (dense - head.unseen), rtol=1e-5, atol=1e-5)
    assert (again[:, [0, 2, 3, 5]] == 0).all()


def test_save_and_load_round_trip_in_int8(tmp_path):
    rng = np.random.default_rng(2)
    head, _, _ = _head(rng)
    head.save(tmp_path / "h.npz")
    back = CatalogHead.load(tmp_path / "h.npz")
    assert back.emojis == head.emojis and back.weight == 2.0 and back.idf_digest == head.idf_digest
    a, b = head.weights.toarray(), back.weights.toarray()
    assert ((a != 0) == (b != 0)).all()
    scale = np.abs(a).max(axis=0) / 127  # one scale per emoji: at most half a step off
    assert (np.abs(a - b) <= scale / 2 + 1e-6).all()


def test_top_k_finds_the_k_largest_of_each_row():
    rng = np.random.default_rng(3)
    for n in (7, 90, 1903):
        s = rng.normal(size=(64, n)).astype(np.float32)
        k = min(5, n)
        got = np.sort(top_k(s, k), axis=1)
        want = np.sort(np.argsort(-s, axis=1)[:, :k], axis=1)
        np.testing.assert_array_equal(got, want)
    s = np.zeros((2, 1903), np.float32)  # ties: k distinct columns all the same
    s[0, [5, 700, 1902]] = 1.0
    top = top_k(s, 5)
    assert {5, 700, 1902} <= set(top[0].tolist()) and len(set(top[0].tolist())) == 5
    width = -(-1903 // 16)  # the five largest in one strided slice, and the last column
    for cols in ([3 + i * width for i in range(5)], [1902, 1901, 1900, 1899, 0]):
        s = rng.normal(size=(1, 1903)).astype(np.float32)
        s[0, cols] = 10.0 + np.arange(5)
        assert sorted(top_k(s, 5)[0].tolist()) == sorted(cols)


def test_the_shipped_ranker_adds_the_head_to_whole_catalog_scores_only(ranker):
    head = ranker.catalog_head
    assert head is not None and head.weight > 0, ranker.catalog_head_note  # chosen on the tune rows
    text = ["my flight got cancelled, stuck at the airport"]
    cands = ["✈️", "😂", "❤️"]  # among given candidates (TweetEval, airline) it stays out
    np.testing.assert_allclose(ranker.scores(text, cands), ranker.scores(text, cands, catalog_head=False))
    assert ranker.rank(text, k=1)[0][0].emoji == "✈️"


def test_a_head_trained_on_another_ngram_weighting_is_ignored(tmp_path):
    import shutil

    from models.artifacts import CATALOG_HEAD_FILE, DEFAULT_DIR
    from models.ranker import TextRanker

    folder = tmp_path / "artifacts"
    shutil.copytree(DEFAULT_DIR, folder)
    head = CatalogHead.load(folder / CATALOG_HEAD_FILE)
    head.idf_digest = "0" * 16  # `train sqam` ran again: the n-gram rows are weighted otherwise
    (folder / CATALOG_HEAD_FILE).unlink()
    head.save(folder / CATALOG_HEAD_FILE)
    r = TextRanker(folder)
    assert r.catalog_head is None and "another n-gram weighting" in r.catalog_head_note
    plain = TextRanker(DEFAULT_DIR)
    np.testing.assert_allclose(r.scores(["lol"]), plain.scores(["lol"], catalog_head=False), atol=1e-5)


@pytest.mark.parametrize("texts", [["hello"], ["a", "pizza party tonight!!", "😂😂😂"]])
def test_rank_orders_each_top_k_by_score(ranker, texts):
    s = ranker.scores(texts)
    for row, ranked in zip(s, ranker.rank(texts, k=5), strict=True):
        assert [r.score for r in ranked] == sorted((r.score for r in ranked), reverse=True)
        assert ranked[0].score == pytest.approx(float(row.max()))
        assert ranked[-1].score == pytest.approx(float(np.sort(row)[-5]))


@pytest.mark.parametrize("compiled", [True, False])
def test_the_product_added_in_place_equals_scipys_with_repeated_entries_and_without_its_internals(
    compiled, monkeypatch
):
    """``SparseProduct`` (the catalog head's step) adds ``a @ b`` into ``out`` through
    SciPy's compiled routines, or, where they are missing, through the public product; the
    rows the ranker hands it keep a text's repeated n-grams as separate, unsorted entries.
    Shapes that do not fit are refused (the compiled routines would write past them)."""
    from scipy.sparse import _sparsetools

    rng = np.random.default_rng(7)
    if compiled:  # the compiled route must not fall back on the public product
        monkeypatch.setattr(csr_matrix, "__matmul__", lambda *_: pytest.fail("fell back"))
    else:
        monkeypatch.delattr(_sparsetools, "csr_matmat")
    ids = np.array([[5, 3, 5, 0], [9, 1, 2, 1], [0, 0, 0, 0]])  # repeats, unsorted, an empty row
    nz = ids != 0
    indptr = np.concatenate([[0], np.cumsum(nz.sum(axis=1))])
    a = csr_matrix((rng.uniform(size=nz.sum()).astype(np.float32), ids[nz], indptr), shape=(3, 12))
    assert not a.has_canonical_format
    dense_b = np.where(rng.uniform(size=(12, 7)) < 0.4, rng.normal(size=(12, 7)), 0).astype(np.float32)
    b = csr_matrix(dense_b)
    out = rng.normal(size=(3, 7)).astype(np.float32)
    expected = out + a.toarray() @ dense_b
    product = SparseProduct(b)
    assert product.per_row == int((dense_b != 0).any(axis=0).sum())  # room for every column b has
    product.add_into(out, a)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="cannot add"):
        product.add_into(np.zeros((3, 6), np.float32), a)
    with pytest.raises(ValueError, match="cannot add"):
        product.add_into(np.zeros((3, 7), np.float32), csr_matrix(np.ones((3, 13), np.float32)))
