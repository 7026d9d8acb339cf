"""TF-IDF + LinearSVC baseline (scikit-learn) over the TweetEval emoji labels.

The yardstick of `emojibot bench text`: word 1–2-grams + character 2–5-grams, class
weights balanced. It can only choose among the 20 labels it was trained on.
"""

from __future__ import annotations

import os

from training.data import load_tweeteval


def build_baseline():
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_pipeline, make_union
    from sklearn.svm import LinearSVC

    features = make_union(
        TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, lowercase=True),
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=3, sublinear_tf=True, max_features=300_000),
    )
    return make_pipeline(features, LinearSVC(C=0.1, class_weight="balanced"))


def train_baseline(data_dir: str | os.PathLike):
    """Fit on TweetEval train; returns (pipeline, emojis of the label ids)."""
    train = load_tweeteval(data_dir, "train")
    model = build_baseline()
    model.fit(train.texts, train.labels)
    return model, train.label_emojis
