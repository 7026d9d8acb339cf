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
    return CatalogTally().add(scores, gold).figures()


class CatalogTally:
    """:func:`catalog_metrics` gathered a chunk of rows at a time, keeping a few numbers per
    row instead of the scores: a long file's (N, catalog) scores need not fit in memory (a
    million messages would be 7.6 GB of float32)."""

    def __init__(self) -> None:
        self.best_rank: list[np.ndarray] = []  # per chunk, each row's best-ranked gold emoji (1 = first)
        self.first: set[int] = set()  # the emojis ranked first
        self.hits: dict[int, list[int]] = {}  # per gold emoji, 1 where it was in a row's top 5

    def add(self, scores: np.ndarray, gold: list[np.ndarray]) -> CatalogTally:
        if len(scores) != len(gold):
            raise ValueError(f"{len(scores)} rows of scores for {len(gold)} rows of gold emojis")
        best = np.empty(len(gold), dtype=np.int64)
        for i, cols in enumerate(gold):
            row = scores[i]
            ranks = np.array([int(np.sum(row > row[c])) + 1 for c in cols])  # 1 = first
            best[i] = ranks.min()
            for c, r in zip(cols, ranks, strict=True):
                self.hits.setdefault(int(c), []).append(int(r <= 5))
        self.best_rank.append(best)
        if len(scores):
            self.first.update(np.unique(scores.argmax(axis=1)).tolist())
        return self

    def figures(self) -> dict[str, float]:
        best = np.concatenate(self.best_rank) if self.best_rank else np.empty(0, np.int64)
        if len(best) == 0:
            raise ValueError("no examples to score")
        return {
            "top1_accuracy": float(np.mean(best == 1)),
            "top5_accuracy": float(np.mean(best <= 5)),
            "mrr": float(np.mean(1.0 / best)),
            "macro_recall_at_5": float(np.mean([np.mean(v) for v in self.hits.values()])),
            "distinct_top1": len(self.first),
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
