"""Classification metrics over ranked candidates (plain NumPy, fractions not percent)."""

from __future__ import annotations

from typing import Any

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


def catalog_metrics(scores: np.ndarray, gold: list[np.ndarray]) -> dict[str, float]:
    """Whole-catalog ranking of texts that each have one or more right emojis.

    ``scores`` (N, C) over the catalog; ``gold[i]`` the catalog columns of row i's emojis.
    ``top1_accuracy``: the first emoji is one of the gold; ``top5_accuracy``: a gold emoji in
    the top 5; ``mrr``: mean reciprocal rank of the best-ranked gold emoji;
    ``macro_recall_at_5``: for each gold emoji, the share of its rows where it is in the top
    5, averaged over emojis (finding the rare, specific emoji counts as much as 😂);
    ``distinct_top1``: how many different emojis are ranked first. Ties rank pessimistically.
    """
    if len(gold) == 0:
        raise ValueError("no examples to score")
    best_rank = np.empty(len(gold), dtype=np.int64)
    hits: dict[int, list[int]] = {}
    for i, cols in enumerate(gold):
        row = scores[i]
        ranks = np.array([int(np.sum(row > row[c])) + 1 for c in cols])  # 1 = first
        best_rank[i] = ranks.min()
        for c, r in zip(cols, ranks, strict=True):
            hits.setdefault(int(c), []).append(int(r <= 5))
    return {
        "top1_accuracy": float(np.mean(best_rank == 1)),
        "top5_accuracy": float(np.mean(best_rank <= 5)),
        "mrr": float(np.mean(1.0 / best_rank)),
        "macro_recall_at_5": float(np.mean([np.mean(v) for v in hits.values()])),
        "distinct_top1": int(len(np.unique(scores.argmax(axis=1)))),
    }


def within_tolerance(grid: list[dict[str, Any]], floors: dict[str, float], figures=lambda g: g) -> list:
    """The rows of a tuning grid whose figures (``figures(row)``) are each at most
    ``floors[name]`` below those of the grid's first row (the setting off): the rule every
    tuned weight of whole-catalog ranking is chosen under."""
    base = figures(grid[0])
    return [g for g in grid if all(figures(g)[k] >= base[k] - t for k, t in floors.items())]


def rounded(figures) -> dict[str, float]:
    """Figures as the manifests and reports keep them: floats to 4 places."""
    return {k: round(float(v), 4) for k, v in figures.items()}
