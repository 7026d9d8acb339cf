"""Full training runs on the real data (about 10 minutes): `python3 -m pytest -m slow`."""

import pytest

pytestmark = pytest.mark.slow


def test_full_training_reaches_the_shipped_quality(tmp_path, data_dir):
    from models.artifacts import read_manifest
    from training.sqam import TrainSettings, train_sqam
    from training.vae import train_vae

    vae = train_vae(tmp_path, verbose=0)
    assert vae["nonfinite_codes"] == 0
    info = train_sqam(data_dir, tmp_path, TrainSettings(), verbose=False)
    shipped = read_manifest()["sqam"]
    # A retrain with the default settings reproduces the shipped model (runs measured
    # deterministic here; the tolerance allows for another CPU's float rounding).
    assert abs(info["tweeteval_val"]["macro_f1"] - shipped["tweeteval_val"]["macro_f1"]) < 0.01
    assert abs(info["airline_holdout"]["accuracy"] - shipped["airline_holdout"]["accuracy"]) < 0.015
