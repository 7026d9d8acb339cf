"""A small end-to-end run: VAE → SQAM → exported artifacts → ranking and evaluation,
on tiny data this test writes (a learnable signal per emoji), so it runs in about a minute."""

import json

import numpy as np
import pytest

from training.data import TWEETEVAL_EMOJIS

SIGNALS = {  # label id -> words that always come with it
    0: "love you so much my dear",
    4: "this track is fire hot lit",
    10: "camera photo shoot lens",
    17: "christmas tree santa gifts",
}


def _write_tiny_data(root, rng):
    tw = root / "tweeteval_emoji"
    tw.mkdir(parents=True)
    (tw / "mapping.txt").write_text(
        "".join(f"{i}\t{e}\t_name_\n" for i, e in enumerate(TWEETEVAL_EMOJIS)), encoding="utf-8"
    )
    filler = "today the people went out and then we saw it again".split()
    for split, n in (("train", 400), ("val", 120)):
        texts, labels = [], []
        for _ in range(n):
            label = int(rng.choice(list(SIGNALS)))
            words = SIGNALS[label].split()
            picked = list(rng.choice(words, 2, replace=False)) + list(rng.choice(filler, 3))
            rng.shuffle(picked)
            texts.append(" ".join(picked))
            labels.append(str(label))
        (tw / f"{split}_text.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
        (tw / f"{split}_labels.txt").write_text("\n".join(labels) + "\n", encoding="utf-8")
    twemoji = root / "twemoji_tweets"
    twemoji.mkdir()
    rows = ["text,emojis"]
    for _ in range(500):
        label = int(rng.choice(list(SIGNALS)))
        words = list(rng.choice(SIGNALS[label].split(), 2, replace=False)) + list(rng.choice(filler, 3))
        rng.shuffle(words)
        rows.append(f"{' '.join(words)},{TWEETEVAL_EMOJIS[label]}")
    (twemoji / "tweets.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    air = root / "airline_sentiment"
    air.mkdir()
    rows = ["tweet_id,airline_sentiment,airline_sentiment_confidence,negativereason,airline,text,tweet_created"]
    for i in range(90):
        s = ("positive", "neutral", "negative")[i % 3]
        text = {
            "positive": "thanks great crew",
            "neutral": "what time is the flight",
            "negative": "delayed again awful",
        }[s]
        rows.append(f"{i},{s},1.0,,United,@united {text},24-02-2015 11:15")
    (air / "tweets_train.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def tiny_artifacts(tmp_path_factory):
    from models.sqam import SQAMConfig
    from training.sqam import TrainSettings, train_sqam
    from training.vae import train_vae

    root = tmp_path_factory.mktemp("tiny")
    data = root / "data"
    _write_tiny_data(data, np.random.default_rng(0))
    out = root / "artifacts"
    vae_info = train_vae(out, epochs=2, verbose=0)
    settings = TrainSettings(
        epochs=6,
        batch_size=32,
        top_words=2000,
        max_tweets=400,
        learning_rate=3e-3,
        model=SQAMConfig(ngram_dim=8, tower_dim=32, shared_dims=(32, 16)),
    )
    sqam_info = train_sqam(data, out, settings, verbose=False)
    return data, out, vae_info, sqam_info


def test_vae_codes_are_finite_and_written(tiny_artifacts):
    _, out, vae_info, _ = tiny_artifacts
    codes = np.load(out / "emoji_codes.npy")
    assert codes.shape[1] == 16 and np.isfinite(codes).all()
    assert vae_info["nonfinite_codes"] == 0
    assert vae_info["val_pictures"] > 300 and vae_info["val_reconstruction_loss"] > 0


def test_sqam_learns_the_signal(tiny_artifacts):
    _, _, _, info = tiny_artifacts
    # four emojis carry a signal: over the whole catalog, the right one comes first on
    # held-out rows; among the 20 TweetEval emojis too
    assert info["twemoji_val"]["top1_accuracy"] > 0.6, info["history"]
    assert info["tweeteval_val_sqam"]["accuracy"] > 0.6, info["history"]
    losses = [h["loss"] for h in info["history"]]
    assert losses[-1] < losses[0]
    assert info["best_epoch"] == max(info["history"], key=lambda h: h["mrr"] + h["macro_recall_at_5"])["epoch"]


def test_manifest_is_versioned(tiny_artifacts):
    _, out, _, _ = tiny_artifacts
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["version"] and {"vae", "sqam"} <= set(manifest)


def test_exported_artifacts_rank_and_evaluate(tiny_artifacts):
    from models.ranker import TextRanker
    from training.evaluate import evaluate_tweeteval

    data, out, _, info = tiny_artifacts
    ranker = TextRanker(out)
    top = ranker.rank(["santa brought christmas gifts"], k=3, candidates=list(TWEETEVAL_EMOJIS))[0]
    assert top[0].emoji == "🎄"
    tw = data / "tweeteval_emoji"
    res = evaluate_tweeteval(tw / "val_text.txt", tw / "val_labels.txt", tw / "mapping.txt", artifacts=out)
    assert res["n"] == 120
    assert res["accuracy"] == pytest.approx(info["tweeteval_val_sqam"]["accuracy"])
    heads_free = TextRanker(out)
    assert heads_free.rank(["santa christmas tree"], k=1)[0][0].emoji == "🎄"  # the whole catalog


def _tiny_head_settings():
    from training.heads import HeadSettings
    from training.sequence import SequenceSettings

    return HeadSettings(
        tweet_cs=(0.1, 1.0),
        airline_cs=(0.3, 1.0),
        airline_sequence=SequenceSettings(lstm_units=8, epochs=4),
        sentence_cache=False,
    )


@pytest.fixture(scope="module")
def tiny_heads(tiny_artifacts):
    from training.heads import train_heads

    data, out, _, _ = tiny_artifacts
    return train_heads(data, out, _tiny_head_settings(), verbose=False)


def test_heads_train_after_the_sqam_and_ship(tiny_artifacts, tiny_heads):
    from models.ranker import TextRanker

    _, out, _, _ = tiny_artifacts
    assert (out / "text_heads.npz").exists()
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["heads"]["tweeteval_c"] in (0.1, 1.0)
    ranker = TextRanker(out)
    assert ranker.heads is not None, ranker.heads_note
    assert [g.name for g in ranker.heads.groups] == ["tweeteval", "airline"]
    # the TweetEval head's sentence block, its share chosen out of fold (0 leaves it unread)
    assert manifest["heads"]["sentence_share"] in _tiny_head_settings().tweet_sentence_shares
    assert ranker.heads.groups[0].sentence_weights is not None
    assert ranker.heads.groups[0].reads_sentences == (manifest["heads"]["sentence_share"] > 0)
    stack = manifest["heads"]["airline_stack"]
    assert set(stack["weights"]) == {"svm", "nbsvm", "bilstm", "sentence"}
    # the BiLSTM and the sentence member ship exactly when the cross-validation gave them a share
    airline = ranker.heads.groups[1]
    assert (airline.sequence is not None) == (stack["weights"]["bilstm"] > 0)
    assert airline.reads_sentences == (stack["weights"]["sentence"] > 0) == (airline.sentence_weights is not None)
    # the words of each signal decide among the 20 with the heads in place
    assert tiny_heads["tweeteval_val"]["shipped"]["accuracy"] > 0.9
    top = ranker.rank(["camera lens photo"], k=1, candidates=list(TWEETEVAL_EMOJIS))[0][0]
    assert top.emoji == "📷"
    air = ranker.rank(["delayed again awful"], k=1, candidates=["🎉", "😈", "😡"])[0][0]
    assert air.emoji == "😡"


def test_tweeteval_val_is_only_reported(tiny_artifacts, tiny_heads, tmp_path):
    """The TweetEval head's C, share and offsets come from out-of-fold scores of the train
    tweets: the same training with val's labels scrambled ships the same TweetEval head
    (and reports a different val figure)."""
    import shutil

    from models.heads import TextHeads
    from training.heads import train_heads

    data, out, _, _ = tiny_artifacts
    scrambled = tmp_path / "data"
    shutil.copytree(data, scrambled)
    labels = scrambled / "tweeteval_emoji" / "val_labels.txt"
    ids = labels.read_text(encoding="utf-8").split()
    labels.write_text("\n".join(ids[1:] + ids[:1]) + "\n", encoding="utf-8")  # every label moved
    copy = tmp_path / "artifacts"
    shutil.copytree(out, copy)
    info = train_heads(scrambled, copy, _tiny_head_settings(), verbose=False)
    for key in ("tweeteval_c", "tweeteval_nb_share", "mix", "offsets_cross_fitted", "tweeteval_train_oof"):
        assert info[key] == tiny_heads[key], key
    assert info["offsets_cross_fitted"]["macro_f1_with"] > 0.9  # the signal words, out of fold
    got, want = (
        next(g for g in TextHeads.load(folder / "text_heads.npz").groups if g.name == "tweeteval")
        for folder in (copy, out)
    )
    assert got.beta == pytest.approx(want.beta) and np.array_equal(got.offsets, want.offsets)
    assert info["tweeteval_val"]["shipped"]["accuracy"] < 0.5 < tiny_heads["tweeteval_val"]["shipped"]["accuracy"]


def test_heads_tuned_with_another_sqam_are_ignored(tiny_artifacts, tiny_heads, tmp_path):
    import shutil

    from models.ranker import TextRanker

    _, out, _, _ = tiny_artifacts
    copy = tmp_path / "artifacts"
    shutil.copytree(out, copy)
    answers = np.load(copy / "sqam_answers.npy")
    np.save(copy / "sqam_answers.npy", answers[:, ::-1].copy())  # as if the SQAM was retrained
    ranker = TextRanker(copy)
    assert ranker.heads is None
    assert "another SQAM" in ranker.heads_note
    assert ranker.rank(["santa gifts"], k=3)  # still ranks, with the SQAM alone


def test_wgan_trains_end_to_end_on_a_few_photos(tiny_artifacts, data_dir, tmp_path):
    """Encoder/baseline → WGAN-GP variants → shipped picture artifacts → evaluation and answers."""
    from models.picture import PictureModel
    from training.evaluate import evaluate_pictures
    from training.wgan import WGANSettings, train_wgan

    _, out, _, _ = tiny_artifacts
    s = WGANSettings(
        classifier_minutes=2,
        classifier_epochs=1,
        wgan_epochs=2,
        max_pictures=600,
        samples=10,
        spaces=("sqam", "vae", "emoji2vec"),
        weighting=("expsmooth", "none"),
        sheet_dir=str(tmp_path / "sheets"),
    )
    info = train_wgan(data_dir, out, s, verbose=False)
    shipped = info["wgan"]["shipped"]
    assert shipped in {"sqam-expsmooth", "vae-expsmooth", "sqam-none"}
    assert {v["space"] for v in info["variants"]} == {"sqam", "vae", "emoji2vec"}
    # emoji2vec lacks the newer emojis: scored on the ones it has, never shipped, and every
    # variant also scored on the emojis all spaces share.
    e2v = next(v for v in info["variants"] if v["space"] == "emoji2vec")
    assert "no vector for" in e2v["covers"] and "🪿" in e2v["covers"]
    assert e2v["val"]["candidates"] == int(e2v["covers"].split()[0]) < 85
    assert all(v["common_subset"]["candidates"] == e2v["val"]["candidates"] for v in info["variants"])
    assert not shipped.startswith("emoji2vec")
    for v in info["variants"]:
        assert 0.0 <= v["val"]["top1_accuracy"] <= v["val"]["top5_accuracy"] <= 1.0
        assert all(
            np.isfinite(h["wasserstein"]) and h["gradient_penalty"] >= 0
            for h in info["variant_histories"][f"{v['space']}-{v['weighting']}"]
        )
    assert len(list((tmp_path / "sheets" / shipped).glob("epoch_*.png"))) == 2  # one sheet per epoch
    model = PictureModel(out, samples=10)
    res = evaluate_pictures(
        data_dir / "tinyimagenet_emoji" / "train.npz", artifacts=out, max_pictures=100, progress=False
    )
    assert res["n"] == 100 and res["candidates"] == 85
    assert res["classifier_baseline"]["n"] == 100
    assert 1 <= res["distinct_modes"] <= 85
    whole = res["whole_catalog"]  # what the bot answers: the samples' nearest among every emoji
    assert whole["candidates"] == len(model.chars) > 85
    assert 0.0 <= whole["top1_accuracy"] <= min(whole["top5_accuracy"], whole["mode_in_dataset"]) <= 1.0
    assert model.meta["target_space"] == shipped.split("-")[0]
    # The hold-out of the training run, scored again from the shipped files, gives its figures.
    held = evaluate_pictures(
        data_dir / "tinyimagenet_emoji" / "train.npz",
        artifacts=out,
        progress=False,
        holdout=True,
        sheet=tmp_path / "sheet.png",
        sheet_rows=4,
    )
    assert held["n"] == info["pictures"]["val"]
    assert held["classifier_baseline"]["top1_accuracy"] == pytest.approx(info["classifier"]["val"]["top1_accuracy"])
    from PIL import Image

    assert Image.open(tmp_path / "sheet.png").size[1] == 4 * 72


def test_wgan_stage_can_retrain_on_the_shipped_encoder(tiny_artifacts, data_dir, tmp_path):
    from training.wgan import WGANSettings, train_wgan

    _, out, _, _ = tiny_artifacts
    if not (out / "picture_encoder.weights.h5").exists():
        s = WGANSettings(
            classifier_minutes=2,
            classifier_epochs=1,
            wgan_epochs=1,
            max_pictures=300,
            samples=5,
            spaces=("vae",),
            weighting=("none",),
            sheet_dir=str(tmp_path / "a"),
        )
        train_wgan(data_dir, out, s, verbose=False)
    from models.picture import build_image_encoder

    def encoder_weights():
        enc = build_image_encoder()
        enc.load_weights(out / "picture_encoder.weights.h5")
        return enc.get_weights()

    before = encoder_weights()
    s = WGANSettings(
        wgan_epochs=1,
        max_pictures=300,
        samples=5,
        spaces=("vae",),
        weighting=("none",),
        reuse_encoder=True,
        learning_rate=5e-4,
        sheet_dir=str(tmp_path / "b"),
    )
    info = train_wgan(data_dir, out, s, verbose=False)
    assert info["wgan"]["shipped"] == "vae-none" and info["settings"]["learning_rate"] == 5e-4
    after = encoder_weights()  # only the WGAN stage trained: the encoder is the shipped one
    assert all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))


def test_train_names_reproduces_the_shipped_weight_and_figures(tmp_path, data_dir, capsys):
    """`emojibot --artifacts COPY train names` on a copy of the shipped folder chooses the
    shipped weight on the tune rows with the shipped figures (it reads no randomness but
    the tune draw), and writes the copy, not the shipped folder."""
    import json
    import shutil

    from bot.cli import main
    from models.artifacts import MANIFEST, MEANINGS_FILE, NAMES_FILE, artifacts_dir, read_manifest

    out = tmp_path / "artifacts"
    shutil.copytree(artifacts_dir(None), out)
    (out / NAMES_FILE).unlink()
    shipped_files = {
        p.name: p.read_bytes()
        for p in (artifacts_dir(None) / MANIFEST, artifacts_dir(None) / NAMES_FILE, artifacts_dir(None) / MEANINGS_FILE)
    }
    assert main(["--artifacts", str(out), "train", "names", "--data-dir", str(data_dir)]) == 0
    captured = capsys.readouterr()
    printed, printed_err = json.loads(captured.out), captured.err
    assert (out / NAMES_FILE).exists()  # written into the folder --artifacts named
    assert {p: (artifacts_dir(None) / p).read_bytes() for p in shipped_files} == shipped_files
    info = read_manifest(out)["names"]
    assert printed["weight"] == info["weight"]
    shipped = read_manifest()["names"]
    assert info["weight"] == shipped["weight"] > 0
    assert info["tune_grid"] == shipped["tune_grid"]
    assert info.get("twemoji_val_with") == shipped.get("twemoji_val_with")  # none: trained on every tweet
    on_tune = {g["weight"]: g for g in info["tune_grid"]}
    assert on_tune[info["weight"]]["mrr"] > on_tune[0.0]["mrr"]  # the names help where they were chosen
    # the meaning match: the cosines of the shipped file are reused (same words, same names;
    # embedding 44,000 words would take minutes), its weight and grid are the shipped ones
    assert "embedding" not in printed_err
    assert info["meanings"]["weight"] == shipped["meanings"]["weight"] > 0
    assert info["meanings"]["tune_grid"] == shipped["meanings"]["tune_grid"]
    meaning_tune = {g["weight"]: g for g in info["meanings"]["tune_grid"]}
    assert meaning_tune[info["meanings"]["weight"]]["macro_recall_at_5"] > meaning_tune[0.0]["macro_recall_at_5"]


def test_catalog_head_trains_after_the_sqam_and_ranks(tiny_artifacts, tmp_path):
    """On the tiny data each emoji has its own words: the head learns them, its weight is
    chosen on the tune rows, and the ranker adds it to whole-catalog scores."""
    import shutil

    from models.artifacts import CATALOG_HEAD_FILE, read_manifest
    from models.ranker import TextRanker
    from training.catalog_head import CatalogHeadSettings, train_catalog_head

    data, out, _, _ = tiny_artifacts
    folder = tmp_path / "artifacts"
    shutil.copytree(out, folder)  # the module's other tests keep the folder without a head
    # 150 of the 400 TweetEval train tweets choose the weights; the others enter the head last
    info = train_catalog_head(data, folder, CatalogHeadSettings(keep=5_000, prior_texts=150), verbose=False)
    assert (folder / CATALOG_HEAD_FILE).exists() and info["entries"] <= 5_000
    assert info["emojis"] == len(SIGNALS) and info["weight"] in CatalogHeadSettings().weights
    assert read_manifest(folder)["catalog_head"]["weight"] == info["weight"]
    ranker = TextRanker(folder)
    assert ranker.catalog_head is not None, ranker.catalog_head_note
    head = ranker.catalog_head
    rows = ranker.encoder.ngram_rows(ranker.featurizer.featurize([SIGNALS[17], SIGNALS[10]]).ngram_ids)
    best = [head.emojis[i] for i in head.raw(rows).argmax(axis=1)]
    assert best == [TWEETEVAL_EMOJIS[17], TWEETEVAL_EMOJIS[10]]  # the head alone knows the signal
    with_head, without = info["twemoji_val_with"], info["twemoji_val_without"]
    assert with_head["top5_accuracy"] >= without["top5_accuracy"] - 0.05
    # the popularity mix: a temperature fitted on the tune rows, a weight from the grid
    prior = info["prior"]
    assert ranker.prior is not None and ranker.prior.weight == prior["weight"] in CatalogHeadSettings().prior_weights
    assert ranker.prior.temperature == prior["temperature"] > 0
    assert ranker.prior.sureness == prior["sureness"] in CatalogHeadSettings().sureness
    # every weight without the sureness, then every weight but 0 (nothing to yield) with it
    weights = sorted(CatalogHeadSettings().prior_weights)
    assert [(g["weight"], g["sureness"]) for g in prior["grid"]] == [(w, 0.0) for w in weights] + [
        (w, 1.0) for w in weights if w
    ]
    assert prior["tweeteval_train_texts"] > 0 and all("tweeteval_train" in g for g in prior["grid"])
    slot = info["name_slot"]  # chosen where it costs the tune rows nothing that matters
    assert slot["threshold"] in (0.0, *CatalogHeadSettings().slot_thresholds)
    assert ranker.name_slot == slot["threshold"] or ranker.names is None
    # last, TweetEval's train tweets but the choosing ones in its emojis' columns
    columns = info["tweeteval_columns"]
    assert columns["weight"] == CatalogHeadSettings().tweeteval_weight > 0
    assert columns["tweets"] == 400 - 150 and "tune" in columns and "tweeteval_train" in columns
    # with every TweetEval tweet a choosing one (the default 8,000 of these 400) the columns stay
    assert train_catalog_head(data, folder, CatalogHeadSettings(keep=5_000), verbose=False)["tweeteval_columns"] is None


def test_tweeteval_columns_are_liblinears_one_vs_rest_columns_with_more_rows(tiny_artifacts):
    """`_refit_tweeteval_columns` solves, per column, the binary problem liblinear's
    one-vs-rest solves: with TweetEval's tweets weighing nothing it gives back the
    one-vs-rest columns; with them it moves the columns of TweetEval's emojis only."""
    from training.catalog_head import CatalogHeadSettings, _fit_head, _refit_tweeteval_columns, ranker_over_ngrams
    from training.data import shipped_pool

    data, out, _, _ = tiny_artifacts
    ranker, catalog = ranker_over_ngrams(data, out, "the test")
    draw = shipped_pool(data, out, catalog)
    pos = ranker.index.positions
    texts = [draw.pool.texts[i] for i in draw.rest]
    labels = np.asarray([pos[draw.pool.gold[i][0]] for i in draw.rest])
    # one emoji of the tiny tweets becomes one TweetEval does not have, so that a column stays out
    frog = pos[catalog.lookup("🐸").char]
    labels[labels == pos[catalog.lookup(TWEETEVAL_EMOJIS[17]).char]] = frog
    s = CatalogHeadSettings(keep=5_000, prior_texts=150)
    fit = _fit_head(ranker, texts, labels, s, lambda msg: None)
    ovr = fit.coef.copy(), fit.bias.copy()
    s.tweeteval_weight = 0.0
    assert _refit_tweeteval_columns(ranker, data, fit, s, lambda msg: None) > 0
    np.testing.assert_allclose(fit.coef, ovr[0], atol=1e-4)
    np.testing.assert_allclose(fit.bias, ovr[1], atol=1e-4)
    s.tweeteval_weight = 1.0
    _refit_tweeteval_columns(ranker, data, fit, s, lambda msg: None)
    tweeteval = np.isin(fit.classes, [pos[catalog.lookup(e).char] for e in TWEETEVAL_EMOJIS])
    moved = np.abs(fit.coef - ovr[0]).max(axis=1) > 1e-3
    assert tweeteval.sum() == 3 and list(fit.classes[~tweeteval]) == [frog]
    assert moved[tweeteval].all() and not moved[~tweeteval].any()


def test_sentence_term_distils_the_encoder_and_catalog_head_weighs_it_with_the_mix(
    tiny_artifacts, tmp_path, monkeypatch
):
    """`train sentence` on the tiny data: the real MiniLM embeds the tweets, the teacher and
    the student learn each emoji's words, the term is written (weight 0) and the ranker adds
    it; `train catalog-head` then chooses its weight and the mix together, by the best sum
    over both collections, and writes both. A rerun reads every vector from the cache."""
    import shutil

    from models.artifacts import SENTENCE_FILE, read_manifest
    from models.ranker import TextRanker
    from training.catalog_head import CatalogHeadSettings, choose_sentence_and_mix, train_catalog_head
    from training.data import choice_sample
    from training.sentence import SentenceSettings, train_sentence

    monkeypatch.setenv("EMOJIBOT_CACHE_DIR", str(tmp_path / "cache"))
    data, out, _, _ = tiny_artifacts
    folder = tmp_path / "artifacts"
    shutil.copytree(out, folder)
    s = SentenceSettings(max_texts=700, epochs=6, batch_size=64, learning_rate=1e-2, choice_texts=150)
    info = train_sentence(data, folder, s, verbose=False)
    assert info["training_tweets"] > 300 and info["tweeteval_texts"] == 700 - info["training_tweets"]
    # the teacher reads the TweetEval tweets' own emojis too, but not those `catalog-head` chooses on
    picked = np.sort(np.random.default_rng(s.seed).permutation(400)[: info["tweeteval_texts"]])
    left_out = np.isin(picked, choice_sample(400, 150))
    assert 0 < left_out.sum() < len(picked) and info["tweeteval_labelled"] == len(picked) - left_out.sum()
    assert info["encoded_now"] > 0 and (tmp_path / "cache" / "minilm-sentences.npz").exists()
    assert info["emojis"] == len(SIGNALS) and info["weight"] == 0.0
    history = info["student"]["history"]
    assert min(h["check_kl"] for h in history) < history[0]["check_kl"]  # the student learns the teacher
    assert info["student"]["check_kl"] == min(h["check_kl"] for h in history)  # and keeps its best epoch
    ranker = TextRanker(folder)
    assert ranker.sentence is not None, ranker.sentence_note
    texts = [SIGNALS[17], SIGNALS[10]]
    batch = ranker.featurizer.featurize(texts)
    rows = ranker.encoder.ngram_rows(batch.ngram_ids)
    odds = ranker.sentence.log_odds(rows, ranker.encoder.inputs(batch, rows))
    assert [ranker.sentence.emojis[i] for i in odds.argmax(axis=1)] == [TWEETEVAL_EMOJIS[17], TWEETEVAL_EMOJIS[10]]

    head = train_catalog_head(data, folder, CatalogHeadSettings(keep=5_000), verbose=False)
    grid = head["prior"]["grid"]
    settings = CatalogHeadSettings()
    # every term weight with every mix weight and sureness (a sureness needs a mix to yield)
    every = {
        (t, w, g)
        for t in settings.sentence_weights
        for w in settings.prior_weights
        for g in settings.sureness
        if w or not g
    }
    assert sorted((g["sentence"], g["weight"], g["sureness"]) for g in grid) == sorted(every)
    assert choose_sentence_and_mix(grid) == (
        head["sentence_weight"],
        head["prior"]["weight"],
        head["prior"]["sureness"],
    )
    chosen = TextRanker(folder)
    assert chosen.sentence is not None and chosen.sentence.weight == head["sentence_weight"]
    assert read_manifest(folder)["sentence"]["weight"] == head["sentence_weight"]
    assert chosen.prior.weight == head["prior"]["weight"]
    assert (folder / SENTENCE_FILE).exists()

    again = train_sentence(data, folder, s, verbose=False)  # the same texts: all from the cache
    assert again["encoded_now"] == 0 and again["weight"] == head["sentence_weight"]


def test_train_catalog_head_reproduces_the_shipped_weight_and_figures(tmp_path, data_dir):
    """`train catalog-head` on a copy of the shipped folder trains the same head (liblinear
    with a fixed seed) and chooses the shipped weight, mix and name slot on the tune rows
    with the shipped figures."""
    import shutil

    from models.artifacts import NAME_SLOT_FILE, artifacts_dir, read_manifest
    from training.catalog_head import CatalogHeadSettings, train_catalog_head

    out = tmp_path / "artifacts"
    shutil.copytree(artifacts_dir(None), out)
    info = train_catalog_head(data_dir, out, verbose=False)
    shipped = read_manifest()["catalog_head"]
    assert info["weight"] == shipped["weight"] > 0
    assert info["tune_grid"] == shipped["tune_grid"]
    assert info.get("twemoji_val_with") == shipped.get("twemoji_val_with")  # none: trained on every tweet
    on_tune = {g["weight"]: g for g in info["tune_grid"]}
    assert on_tune[info["weight"]]["mrr"] > on_tune[0.0]["mrr"]
    assert on_tune[info["weight"]]["top5_accuracy"] > on_tune[0.0]["top5_accuracy"]
    assert info["prior"] == shipped["prior"]  # the same temperature, weight and figures
    assert shipped["prior"]["weight"] > 0
    assert info["name_slot"] == shipped["name_slot"]  # the refit's tune rows: 1.0, a named emoji
    assert info["tweeteval_columns"] == shipped["tweeteval_columns"]  # refit after the choices, the same
    for folder in (out, artifacts_dir(None)):  # no file where no slot was chosen
        assert (folder / NAME_SLOT_FILE).exists() == (shipped["name_slot"]["threshold"] > 0)
    slots = {g["threshold"]: g["tune"] for g in info["name_slot"]["grid"]}
    chosen, off = slots[info["name_slot"]["threshold"]], slots[0.0]
    s = CatalogHeadSettings()  # it costs the tune rows at most the mix's tolerances
    assert chosen["top5_accuracy"] >= off["top5_accuracy"] - s.prior_tolerance
    assert chosen["mrr"] >= off["mrr"] - s.prior_tolerance
    assert chosen["macro_recall_at_5"] >= off["macro_recall_at_5"] - s.prior_recall_tolerance


def test_complaint_model_trains_on_the_airline_tweets_and_the_rule_chooses_its_cutoff(tiny_artifacts, tmp_path):
    """`train complaint` on the tiny data: the airline tweets' negative ones say "delayed
    again awful"; the model learns it over the tower's inputs, the cutoff the rule takes
    costs the tune rows and TweetEval's tweets at most the tolerance against the lexicon
    alone, and the ranker reads the file."""
    import shutil

    from models.artifacts import COMPLAINT_FILE, read_manifest
    from models.complaint import THRESHOLD
    from models.ranker import TextRanker
    from training.complaint import NEVER, ComplaintSettings, train_complaint

    data, out, _, _ = tiny_artifacts
    folder = tmp_path / "artifacts"
    shutil.copytree(out, folder)
    settings = ComplaintSettings()
    info = train_complaint(data, folder, settings, verbose=False)
    assert (folder / COMPLAINT_FILE).exists()
    assert read_manifest(folder)["complaint"]["cutoff"] == info["cutoff"] in settings.cutoffs
    assert info["threshold"] == THRESHOLD and info["train_tweets"] > 0
    assert [g["cutoff"] for g in info["grid"]] == list(settings.cutoffs)
    assert [g["threshold"] for g in info["lexicon_grid"]] == list(settings.thresholds)
    first = info["grid"][0]  # the lexicon alone, what the others are measured against
    assert first["cutoff"] == NEVER and first["tune"]["lost"] == first["tweeteval"]["lost"] == {"top5": 0, "mrr": 0}
    chosen = next(g for g in info["grid"] if g["cutoff"] == info["cutoff"])
    for name in ("tune", "tweeteval"):
        assert chosen[name]["lost"]["top5"] <= settings.tolerance and chosen[name]["lost"]["mrr"] <= settings.tolerance
    assert chosen["complaints"] == max(
        g["complaints"]
        for g in info["grid"]
        if all(g[n]["lost"][f] <= settings.tolerance for n in ("tune", "tweeteval") for f in ("top5", "mrr"))
    )
    ranker = TextRanker(folder)
    assert ranker.complaint_model is not None, ranker.complaint_note
    batch = ranker.featurizer.featurize(["@united delayed again awful", "@united thanks great crew"])
    p = ranker.complaint_model.probability(ranker.encoder.inputs(batch))
    assert p[0] > 0.5 > p[1]
    shares = info["airline_holdout_read_as_complaints"]  # of the hold-out no model trained on
    assert set(shares) == {"positive", "neutral", "negative"} and all(0 <= v <= 1 for v in shares.values())
