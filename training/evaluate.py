"""`emojibot evaluate ...`: score the shipped (or given) artifacts on labelled files.

Works on any files in the TweetEval / airline layouts, including splits never seen in
training. Figures are fractions, not percent.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from models.ranker import TextRanker
from training.data import read_airline, read_tweeteval
from training.metrics import ranking_metrics


def _scores(ranker: TextRanker, texts: list[str], candidates: list[str], batch: int = 512) -> np.ndarray:
    # A blank line in a labelled file still counts: it is scored like an unknown word.
    parts = [ranker.scores(texts[i : i + batch], candidates, allow_empty=True) for i in range(0, len(texts), batch)]
    return np.concatenate(parts) if parts else np.zeros((0, len(candidates)))


def evaluate_tweeteval(text, labels, mapping=None, artifacts: str | os.PathLike | None = None) -> dict[str, Any]:
    data = read_tweeteval(text, labels, mapping)
    ranker = TextRanker(artifacts)
    m = ranking_metrics(_scores(ranker, data.texts, data.label_emojis), data.labels, k=5)
    return {**m, "n": len(data.texts), "model_version": ranker.version}


def evaluate_airline(csv_path, artifacts: str | os.PathLike | None = None) -> dict[str, Any]:
    data = read_airline(csv_path)
    ranker = TextRanker(artifacts)
    m = ranking_metrics(_scores(ranker, data.texts, data.label_emojis), data.labels, k=1)
    return {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "n": len(data.texts), "model_version": ranker.version}


def evaluate_pictures(
    npz_path, artifacts: str | os.PathLike | None = None, max_pictures: int | None = None, progress: bool = True
) -> dict[str, Any]:
    """The WGAN's emoji distributions (50 samples per photo) on a file in the layout of
    `tinyimagenet_emoji/train.npz`, over the file's own class emojis; the discriminative
    baseline's softmax on the same photos, side by side."""
    from models.picture import PictureModel
    from training.wgan import load_pictures, picture_metrics

    data = load_pictures(npz_path, max_pictures, progress=progress)
    model = PictureModel(artifacts)
    class_label = np.asarray([data.emojis.index(e) for e in data.class_emoji])
    probs = []
    for i in range(0, len(data.pictures), 64):
        _, key, names = model.distributions(data.pictures[i : i + 64], data.emojis)
        probs.append(key)
    p = np.concatenate(probs)
    assert names == data.emojis
    wgan = picture_metrics(p, data.labels, data.classes, class_label)
    cls_p, cls_names = model.classify(data.pictures, data.emojis)
    order = [cls_names.index(e) for e in data.emojis if e in cls_names]
    baseline = None
    if len(order) == len(data.emojis):
        baseline = picture_metrics(cls_p[:, order], data.labels, data.classes, class_label)
    return {
        **wgan,
        "classifier_baseline": baseline,
        "samples": model.samples,
        "target_space": model.meta["target_space"],
        "model_version": model.version,
    }
