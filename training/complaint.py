"""`emojibot train complaint`: the learned half of what reads as a complaint.

The complaint guard (:mod:`models.complaint`) holds back the emojis of delight where a
message reads negative. The VADER lexicon reads a message only through the words it scores,
so "our server is down again and the pager won't stop" (*won't stop*: a negated negative)
and "the wifi is not working" read neutral and kept 😍 first. This fits a logistic
regression over the SQAM question tower's inputs (what the ranking computes for every
message anyway: a dot product more) on the airline tweets' sentiment labels, negative
against the rest, on the heads' training side (the airline hold-out stays unseen), and
then chooses the model's cutoff by the guard's rule: of the cutoffs that cost the tune
rows and TweetEval's 8,000 choosing tweets at most ``tolerance`` of top-5 and of MRR
against the guard with the lexicon alone (at :data:`models.complaint.THRESHOLD`), the one
that reads the most of their messages as complaints (the loosest). Both collections are
never reported. The lexicon's threshold stays where its own rule put it when it was
chosen; what the lexicon alone costs against no guard at each threshold is measured again
here (``lexicon_grid``), as a model retrained since may move it. The grids, the figures
and the airline hold-out's share of negative, neutral and positive tweets read as
complaints go to ``manifest.json`` → ``complaint``.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.artifacts import COMPLAINT_FILE, artifacts_dir, update_manifest
from models.complaint import THRESHOLD, ComplaintModel
from training.metrics import catalog_metrics, rounded

NEVER = 2.0  # a cutoff no probability reaches: the lexicon alone


@dataclass
class ComplaintSettings:
    c: float = 1.0  # the logistic regression's C
    threshold: float = THRESHOLD  # the lexicon's
    thresholds: tuple[float, ...] = (-0.05, -0.2, -0.3, -0.4, -0.5)  # the lexicon's, measured again (reported)
    cutoffs: tuple[float, ...] = (NEVER, 0.95, 0.9, 0.85, 0.8)  # the model's
    tolerance: float = 0.002  # the guard's rule: top-5 and MRR lost at most this on each collection
    max_texts: int | None = None  # of each collection (tests)


def _inputs(ranker, texts: list[str], chunk: int = 1024) -> np.ndarray:
    """The question tower's inputs of ``texts`` (``NumpyQuestionEncoder.inputs``)."""
    return np.concatenate(
        [ranker.encoder.inputs(ranker.featurizer.featurize(texts[i : i + chunk])) for i in range(0, len(texts), chunk)]
    )


def fit_model(ranker, texts: list[str], negative: np.ndarray, c: float) -> tuple[np.ndarray, float]:
    """(weights, bias) of the logistic regression of ``negative`` over the texts' tower inputs."""
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(C=c, max_iter=3000).fit(_inputs(ranker, texts), negative)
    return lr.coef_[0].astype(np.float32), float(lr.intercept_[0])


def _figures(ranker, texts: list[str], gold: list[np.ndarray], **terms: bool) -> dict[str, float]:
    s = np.concatenate([ranker.scores(texts[i : i + 1024], **terms) for i in range(0, len(texts), 1024)])
    return catalog_metrics(s, gold)


def choose(grid: list[dict[str, Any]], tolerance: float) -> dict[str, Any]:
    """The grid row the rule takes: of those whose top-5 and MRR are each at most
    ``tolerance`` under the first row's (the lexicon alone) on every collection, the one
    reading the most messages as complaints; a tie goes to the stricter cutoff."""
    ok = [
        g
        for g in grid
        if all(g[name]["lost"][f] <= tolerance + 1e-9 for name in ("tune", "tweeteval") for f in ("top5", "mrr"))
    ]
    return max(ok, key=lambda g: (g["complaints"], g["cutoff"]))


def train_complaint(
    data_dir: str | os.PathLike,
    out_dir: str | os.PathLike | None = None,
    settings: ComplaintSettings | None = None,
    verbose: bool = True,
) -> dict[str, Any]:
    """Fit the complaint model on the airline tweets' training side, choose the lexicon's
    threshold and the model's cutoff by the guard's rule, and write them."""
    from models.ranker import TextRanker
    from models.sentence import inputs_digest
    from training.data import AIRLINE_ORDER, CHOICE_TEXTS, airline_sides, choice_sample, load_tweeteval, shipped_pool

    s = settings or ComplaintSettings()
    out = artifacts_dir(out_dir)
    t_start = time.time()
    say = (lambda msg: print(msg, file=sys.stderr)) if verbose else (lambda msg: None)
    ranker = TextRanker(out)
    ranker.complaint_model = None  # a model already there stays on disk until the new one is chosen
    if ranker.encoder.ngram_idf is None:
        raise ValueError(f"the SQAM in {out} has no n-gram table: train it with `emojibot train sqam` first")
    pos = ranker.index.positions
    negative_label = AIRLINE_ORDER.index("negative")

    hold, train = airline_sides(data_dir, out)
    if s.max_texts:
        train = train.take(np.arange(min(len(train.texts), s.max_texts)))
    say(f"complaint: fitting the model on {len(train.texts):,} airline tweets (negative against the rest)")
    weights, bias = fit_model(ranker, train.texts, train.labels == negative_label, s.c)
    digest = inputs_digest(ranker.encoder)

    draw = shipped_pool(data_dir, out, ranker.catalog)
    tune = draw.take(draw.tune)
    te = load_tweeteval(data_dir, "train")
    rows = te.label_rows(ranker.catalog, pos)
    idx = choice_sample(len(te.texts), CHOICE_TEXTS)[: s.max_texts]
    collections = {
        "tune": (tune.texts[: s.max_texts], [np.asarray([pos[c] for c in g]) for g in tune.gold[: s.max_texts]]),
        "tweeteval": ([te.texts[i] for i in idx], [np.asarray([rows[te.labels[i]]]) for i in idx]),
    }
    say(f"complaint: choosing the cutoff on {sum(len(t) for t, _ in collections.values()):,} texts")
    batches = {name: ranker.featurizer.featurize(t) for name, (t, _) in collections.items()}

    measured: dict[tuple[float, float], tuple[dict[str, dict[str, float]], int]] = {}

    def figures_at(threshold: float, cutoff: float) -> tuple[dict[str, dict[str, float]], int]:
        """Each collection's figures with the guard at (threshold, cutoff), and how many of
        their messages read as complaints; each pair is ranked once."""
        if (threshold, cutoff) not in measured:
            ranker.complaint_model = ComplaintModel(weights, bias, cutoff, threshold, digest)
            figures = {name: _figures(ranker, t, g) for name, (t, g) in collections.items()}
            complaints = sum(len(ranker.complaints(b)) for b in batches.values())
            measured[threshold, cutoff] = figures, complaints
        return measured[threshold, cutoff]

    def row(threshold: float, cutoff: float, against: dict[str, dict[str, float]]) -> dict[str, Any]:
        figures, complaints = figures_at(threshold, cutoff)
        entry: dict[str, Any] = {"threshold": threshold, "cutoff": cutoff, "complaints": complaints}
        for name, f in figures.items():
            lost = {"top5": against[name]["top5_accuracy"] - f["top5_accuracy"], "mrr": against[name]["mrr"] - f["mrr"]}
            entry[name] = {**rounded(f), "lost": rounded(lost)}
        return entry

    unguarded = {name: _figures(ranker, t, g, complaint=False) for name, (t, g) in collections.items()}
    lexicon_grid = [row(threshold, NEVER, unguarded) for threshold in s.thresholds]
    lexicon = figures_at(s.threshold, NEVER)[0]
    grid = [row(s.threshold, cutoff, lexicon) for cutoff in s.cutoffs]
    best = choose(grid, s.tolerance)
    model = ComplaintModel(weights, bias, best["cutoff"], s.threshold, digest)

    # what it reads as a complaint among the airline tweets no model trained on
    ranker.complaint_model = model
    hold_batch = ranker.featurizer.featurize(hold.texts)
    read = np.zeros(len(hold.texts), bool)
    read[ranker.complaints(hold_batch)] = True
    (out / COMPLAINT_FILE).unlink(missing_ok=True)  # a new file, never written through a hard link
    model.save(out / COMPLAINT_FILE)
    info: dict[str, Any] = {
        "settings": {"c": s.c, "tolerance": s.tolerance, "max_texts": s.max_texts},
        "threshold": s.threshold,
        "cutoff": best["cutoff"],
        "train_tweets": len(train.texts),
        "unguarded": {name: rounded(f) for name, f in unguarded.items()},
        "lexicon_alone": {name: rounded(f) for name, f in lexicon.items()},
        "chosen": {name: best[name] for name in collections},
        "airline_holdout_read_as_complaints": {
            name: round(float(read[hold.labels == i].mean()), 4) for i, name in enumerate(AIRLINE_ORDER)
        },
        "grid": grid,
        "lexicon_grid": lexicon_grid,
        "train_seconds": round(time.time() - t_start, 1),
    }
    update_manifest(out, "complaint", info)
    say(
        f"complaint: threshold {s.threshold:g}, cutoff {best['cutoff']:g}; of the airline hold-out "
        f"{info['airline_holdout_read_as_complaints']} read as complaints"
    )
    return info
