"""The sentence term (models.sentence): its NumPy forward pass is the Keras student's, it
is bound to the SQAM inputs it was trained on, and the ranker adds it as documented."""

import numpy as np
import pytest

from models.sentence import FOLD, SentenceTerm, inputs_digest

TEXTS = ["feeling really sad about the news today", "congrats on the new job!!", "pizza party at noon", "x"]


@pytest.fixture(scope="module")
def student_and_term(ranker):
    import keras

    from training.sentence import Student

    keras.utils.set_random_seed(5)
    emojis = ["😢", "🎉", "🍕", "😂", "❤️"]
    model = Student(len(emojis), dim=4, hidden=8)
    rng = np.random.default_rng(5)
    log_share = np.log(rng.dirichlet(np.ones(len(emojis)))).astype(np.float32)
    weights = _built(model, ranker).export()
    term = SentenceTerm.from_float(emojis, weights, log_share, 1.5, inputs_digest(ranker.encoder))
    model.table.set_weights([term.table])  # the shipped table is int8: compare with what ships
    return model, term.bind(ranker.index.positions, len(ranker.chars))


def _built(model, ranker):
    from training.sentence import StudentInputs

    x = StudentInputs.of(ranker, TEXTS)
    model(x.take(np.arange(len(TEXTS))))
    w = model.table.get_weights()[0]
    model.table.set_weights([w + np.random.default_rng(1).normal(0, 0.5, w.shape).astype(np.float32)])
    return model


def test_numpy_term_is_the_keras_student(ranker, student_and_term):
    from training.sentence import StudentInputs

    model, term = student_and_term
    x = StudentInputs.of(ranker, TEXTS)
    logits = np.asarray(model(x.take(np.arange(len(TEXTS)))), np.float64)
    want = logits - logits.max(1, keepdims=True)
    want -= np.log(np.exp(want).sum(1, keepdims=True))
    batch = ranker.featurizer.featurize(TEXTS)
    rows = ranker.encoder.ngram_rows(batch.ngram_ids)
    got = term.log_odds(rows, ranker.encoder.inputs(batch, rows))
    np.testing.assert_allclose(got, want - term.log_share, atol=1e-4)
    assert term.table.shape[0] == FOLD


def test_add_to_touches_only_the_students_emojis(ranker, student_and_term):
    _, term = student_and_term
    batch = ranker.featurizer.featurize(TEXTS)
    rows = ranker.encoder.ngram_rows(batch.ngram_ids)
    x = ranker.encoder.inputs(batch, rows)
    s = np.zeros((len(TEXTS), len(ranker.chars)), np.float32)
    term.add_to(s, rows, x, 2.0)
    cols = term.columns
    others = np.setdiff1d(np.arange(len(ranker.chars)), cols)
    assert not s[:, others].any()
    odds = term.log_odds(rows, x)
    np.testing.assert_allclose(s[:, cols], 2.0 * (odds - odds.mean(1, keepdims=True)), atol=1e-5)
    np.testing.assert_allclose(s[:, cols].mean(axis=1), 0.0, atol=1e-5)  # unknown emojis sit at the row's mean


def test_save_and_load_round_trip(tmp_path, ranker, student_and_term):
    _, term = student_and_term
    term.save(tmp_path / "s.npz")
    back = SentenceTerm.load(tmp_path / "s.npz").bind(ranker.index.positions, len(ranker.chars))
    assert back.emojis == term.emojis and back.weight == 1.5 and back.inputs_digest == term.inputs_digest
    np.testing.assert_array_equal(back.table, term.table)
    batch = ranker.featurizer.featurize(TEXTS)
    rows = ranker.encoder.ngram_rows(batch.ngram_ids)
    x = ranker.encoder.inputs(batch, rows)
    np.testing.assert_array_equal(back.log_odds(rows, x), term.log_odds(rows, x))


def test_the_ranker_adds_the_term_and_ignores_one_for_another_sqam(tmp_path, ranker, student_and_term):
    import shutil

    from models.artifacts import SENTENCE_FILE
    from models.ranker import TextRanker

    _, term = student_and_term
    folder = tmp_path / "art"
    shutil.copytree(ranker.folder, folder)
    (folder / SENTENCE_FILE).unlink(missing_ok=True)
    plain = TextRanker(folder)
    term.save(folder / SENTENCE_FILE)
    with_term = TextRanker(folder)
    assert with_term.sentence is not None and "weight 1.5" in with_term.sentence_note
    off = dict(prior=False, name_slot=False, grave=False, complaint=False)
    s_plain = plain.scores(TEXTS, **off)
    s_term = with_term.scores(TEXTS, **off)
    np.testing.assert_allclose(s_term - s_plain, 1.5 * term.scores(*_inputs(with_term)), atol=1e-4)
    np.testing.assert_allclose(with_term.scores(TEXTS, sentence=False, **off), s_plain, atol=1e-6)

    bad = SentenceTerm(term.emojis, _raw(term), term.log_share, 1.5, "0" * 16)
    bad.save(folder / SENTENCE_FILE)
    stale = TextRanker(folder)
    assert stale.sentence is None and "another SQAM" in stale.sentence_note


def _inputs(ranker):
    batch = ranker.featurizer.featurize(TEXTS)
    rows = ranker.encoder.ngram_rows(batch.ngram_ids)
    return rows, ranker.encoder.inputs(batch, rows)


def _raw(term):
    from models.sentence import quantize_rows

    q, scale = quantize_rows(term.table)
    return {"table_q": q, "table_scale": scale, "hidden_w": term.hidden[0], "hidden_b": term.hidden[1],
            "out_w": term.out[0], "out_b": term.out[1]}  # fmt: skip
