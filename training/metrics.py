"""Classification metrics over ranked candidates (plain NumPy, fractions not percent)."""

from __future__ import annotations

import numpy as np


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> float:
    """Unweighted mean of per-class F1 over the classes present in truth or predictions."""
    f1s = []
    for c in range(n_classes):
        tp = int(np.sum((y_pred == c) & (y_true == c)))
        fp = int(np.sum((y_pred == c) & (y_true != c)))
        fn = int(np.sum((y_pred != c) & (y_true == c)))
        if tp + fp + fn == 0:
            continue
        f1s.append(2 * tp / (2 * tp + fp + fn))
    return float(np.mean(f1s)) if f1s else 0.0


def ranking_metrics(scores: np.ndarray, y_true: np.ndarray, k: int = 5) -> dict[str, float]:
    """macro_f1, accuracy and ``top{k}_accuracy`` of the argmax of ``scores`` (N, C).

    The key keeps the k asked for; with fewer than k candidates every label is in the top.
    """
    if len(y_true) == 0:
        raise ValueError("no examples to score")
    y_pred = scores.argmax(axis=1)
    n_classes = scores.shape[1]
    kk = min(k, n_classes)
    topk = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
    return {
        "macro_f1": macro_f1(y_true, y_pred, n_classes),
        "accuracy": float(np.mean(y_pred == y_true)),
        f"top{k}_accuracy": float(np.mean((topk == y_true[:, None]).any(axis=1))),
    }
