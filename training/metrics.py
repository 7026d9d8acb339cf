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
    ``distinct_top1``: how many different emojis are ranked first. Ties rank optimistically:
    an emoji tied with others takes the first of their places.
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

    def ranks(self) -> np.ndarray:
        """Each row's best-ranked gold emoji (1 = first), in the order the rows were added."""
        return np.concatenate(self.best_rank) if self.best_rank else np.empty(0, np.int64)

    def figures(self) -> dict[str, float]:
        best = self.ranks()
        if len(best) == 0:
            raise ValueError("no examples to score")
        return {
            "top1_accuracy": float(np.mean(best == 1)),
            "top5_accuracy": float(np.mean(best <= 5)),
            "mrr": float(np.mean(1.0 / best)),
            "macro_recall_at_5": float(np.mean([np.mean(v) for v in self.hits.values()])),
            "distinct_top1": len(self.first),
        }


def tilted_weights(features: np.ndarray, targets, iterations: int = 200) -> np.ndarray:
    """Row weights (summing to 1) as close to uniform as can be (the least relative entropy:
    exponential tilting, ``w ∝ exp(features · λ)``) under which each column of ``features``
    (N, k) has the weighted mean ``targets[j]``. The reweighting under which a collection
    looks, to a few yardsticks, like a collection we lack: their figures there as targets.
    Raises ValueError where no weights reach the targets (a target outside the range of
    its column, or a combination no rows show), or where the search does not settle."""
    f = np.asarray(features, np.float64)
    t = np.asarray(targets, np.float64)
    if f.ndim != 2 or len(f) == 0 or f.shape[1] != len(t):
        raise ValueError(f"features {f.shape} and {len(t)} targets do not go together")
    floor = -np.log(len(f))  # the dual's least value where weights reach the targets: −log N

    def weights(lam: np.ndarray) -> np.ndarray:
        z = f @ lam
        w = np.exp(z - z.max())
        return w / w.sum()

    def dual(lam: np.ndarray) -> float:  # convex; its minimum is where the weighted means are t
        z = f @ lam
        return float(np.log(np.mean(np.exp(z - z.max()))) + z.max() - lam @ t)

    lam = np.zeros(len(t))
    for _ in range(iterations):
        w = weights(lam)
        gap = w @ f - t
        if np.max(np.abs(gap)) < 1e-7:
            return w
        now = dual(lam)
        if now < floor - 1e-9:  # unbounded below: the targets lie outside what the rows show
            break
        centred = f - w @ f
        hessian = (centred * w[:, None]).T @ centred
        # Levenberg's damping: a near-singular Hessian (a column that nearly repeats another)
        # gets a ridge, grown until the step lowers the dual; a step that does not is never taken
        ridge = 1e-10 * max(float(np.trace(hessian)), 1e-12)
        for _ in range(24):
            step = np.linalg.solve(hessian + ridge * np.eye(len(t)), gap)
            after = lam - step
            lower = dual(after) <= now - 1e-4 * float(gap @ step)
            # near the end the dual's decrease is under its rounding: a step that brings the
            # means closer without raising it is taken too
            closer = dual(after) <= now + 1e-12 and np.max(np.abs(weights(after) @ f - t)) < np.max(np.abs(gap))
            if lower or closer:
                lam = after
                break
            ridge *= 10
        else:
            break  # no step lowers the dual
    if dual(lam) < floor - 1e-9:
        raise ValueError(
            f"no weighting of these {len(f):,} rows gives the targets {t.tolist()}: the rows' figures "
            f"{f.mean(axis=0).round(4).tolist()} cannot be moved there"
        )
    gap = np.max(np.abs(weights(lam) @ f - t))
    raise ValueError(f"the weights for the targets {t.tolist()} did not settle (still {gap:.2g} off)")


def weighted_figures(best_rank: np.ndarray, weights: np.ndarray) -> dict[str, float]:
    """top1/top5 accuracy and MRR of rows whose best-ranked gold emoji stands at
    ``best_rank`` (1 = first), the rows weighted; ``top5_standard_error`` treats the rows as
    independent draws, and ``effective_rows`` is how many equal rows the weights are worth."""
    w = np.asarray(weights, np.float64)
    w = w / w.sum()
    top5 = (best_rank <= 5).astype(np.float64)
    return {
        "top1_accuracy": float(w @ (best_rank == 1)),
        "top5_accuracy": float(w @ top5),
        "top5_standard_error": float(np.sqrt(np.sum(w**2 * (top5 - w @ top5) ** 2))),
        "mrr": float(w @ (1.0 / best_rank)),
        "effective_rows": int(round(1.0 / np.sum(w**2))),
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
