"""Full training runs on the real data (about half an hour): `python3 -m pytest -m slow`."""

import pytest

pytestmark = pytest.mark.slow


def test_full_training_reaches_the_shipped_quality(tmp_path, data_dir):
    from models.artifacts import read_manifest
    from training.sqam import TrainSettings, train_sqam
    from training.vae import train_vae

    vae = train_vae(tmp_path, verbose=0)
    assert vae["nonfinite_codes"] == 0
    shipped = read_manifest()["sqam"]
    info = train_sqam(data_dir, tmp_path, TrainSettings(rows=shipped["settings"]["rows"]), verbose=False)
    # A retrain with the shipped settings reproduces the shipped model's whole-catalog
    # figures on its tune rows (the only ones it never trained on) within 0.01 (the
    # tolerance allows for float rounding and thread scheduling).
    for key in ("top5_accuracy", "mrr", "macro_recall_at_5"):
        assert abs(info["twemoji_tune"][key] - shipped["twemoji_tune"][key]) < 0.01, key
    # Among TweetEval's 20 the SQAM alone is not what ships (the heads decide there) and
    # moves more between runs: a rerun on 2026-11-26 gave 0.1044 against the shipped 0.1160.
    assert abs(info["tweeteval_val_sqam"]["macro_f1"] - shipped["tweeteval_val_sqam"]["macro_f1"]) < 0.03


def test_heads_retrain_to_the_shipped_figures(tmp_path, data_dir):
    """`train heads` on the shipped SQAM (7 to 11 minutes on a 2-core machine) reproduces the shipped heads'
    figures: the airline stack, its hold-out accuracy and TweetEval's cross-fitted estimate."""
    import shutil

    from models.artifacts import artifacts_dir, read_manifest
    from training.heads import train_heads

    out = tmp_path / "artifacts"
    shutil.copytree(artifacts_dir(None), out)
    info = train_heads(data_dir, out, verbose=False)
    shipped = read_manifest()["heads"]
    # The blend weights are chosen on a 0.1 grid by out-of-fold accuracy over a flat optimum,
    # which the BiLSTM's shuffling and thread scheduling move: without the word block, runs
    # chose svm 0.1 / nbsvm 0.6, 0.5 / 0.3, 0.4 / 0.4, 0.5 / 0.2 and 0.3 / 0.4 at stacked
    # accuracies 0.8305 to 0.8333; the shipped run, with it, 0.3 / 0.5 at 0.8332. What must
    # hold is the accuracy they reach.
    got, want = info["airline_stack"]["stacked_cv_accuracy"], shipped["airline_stack"]["stacked_cv_accuracy"]
    assert abs(got - want) < 0.006
    assert info["airline_stack"]["weights"].keys() == shipped["airline_stack"]["weights"].keys()
    got, want = info["airline_holdout"]["shipped"]["accuracy"], shipped["airline_holdout"]["shipped"]["accuracy"]
    assert abs(got - want) < 0.01
    got, want = info["offsets_cross_fitted"]["macro_f1_with"], shipped["offsets_cross_fitted"]["macro_f1_with"]
    assert abs(got - want) < 0.01
