"""`emojibot evaluate ...`: score the shipped (or given) artifacts on labelled files.

Works on any files in the TweetEval / airline layouts, including splits never seen in
training. Figures are fractions, not percent.
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from models.ranker import Terms, TextRanker
from models.reactions import AUTO_REACT_COUNT, AUTO_REACT_THRESHOLD, never_list, reactions, without
from training.data import (
    TWEETEVAL_EMOJIS,
    DataError,
    read_airline,
    read_emoji_csv,
    read_emojis_in_text,
    read_mapping,
    read_tweeteval,
)
from training.metrics import CatalogTally, ranking_metrics
from training.minilm import remember_cached


def evaluate_tweeteval(
    text=None,
    labels=None,
    mapping=None,
    artifacts: str | os.PathLike | None = None,
    offsets: bool = True,
    baseline: str | None = None,
    data_dir: str | os.PathLike | None = None,
    split: str | None = None,
) -> dict[str, Any]:
    """Rank the TweetEval emojis (or a mapping's) for each tweet of a text/labels pair of
    files, or (``data_dir`` + ``split``) for the tweets of that side of the whole-catalog
    split whose one emoji is one of them: tweets of another collection, never trained on.
    ``offsets=False`` zeroes the per-emoji offsets (tuned on TweetEval train out of fold); ``baseline="svm"``
    scores with the TF-IDF + LinearSVC trained on TweetEval train (``data_dir``) instead."""
    ranker = TextRanker(artifacts)
    if text is not None:
        data = read_tweeteval(text, labels, mapping)
    elif data_dir is not None and split is not None:
        from training.data import require_unseen, twemoji_rows_among

        if baseline is None:
            require_unseen(ranker.folder, split)
        emojis = read_mapping(mapping) if mapping else list(TWEETEVAL_EMOJIS)
        data = twemoji_rows_among(data_dir, split, emojis, ranker.catalog)
    else:
        raise ValueError("give --text and --labels, or a data directory and a split")
    name = ranker.version
    if baseline is not None:
        from training.baseline import train_baseline

        if baseline != "svm":
            raise ValueError(f"unknown baseline {baseline!r}: svm")
        if data_dir is None:
            raise ValueError("the baseline trains on TweetEval train: give a data directory")
        model, known = train_baseline(data_dir)
        missing = [e for e in data.label_emojis if e not in known]
        if missing:
            raise ValueError(f"the baseline knows TweetEval's 20 emojis, not {' '.join(missing)}")
        decision = model.decision_function(data.texts)
        scores = decision[:, [list(model.classes_).index(known.index(e)) for e in data.label_emojis]]
        name = "baseline:svm"
    else:
        if not offsets:
            if ranker.heads is None:
                raise ValueError(f"--no-offsets: {ranker.heads_note}")
            for g in ranker.heads.groups:
                g.offsets = np.zeros_like(g.offsets)
            name = f"{ranker.version}-offsets"
        remember_cached(ranker, data.texts)
        scores = ranker.scores_in_chunks(data.texts, data.label_emojis)
    m = ranking_metrics(scores, data.labels, k=5)
    return {**m, "n": len(data.texts), "model_version": name}


def evaluate_airline(
    csv_path=None,
    artifacts: str | os.PathLike | None = None,
    data_dir: str | os.PathLike | None = None,
    baseline: str | None = None,
) -> dict[str, Any]:
    """Sentiment accuracy (🎉 😈 😡) on an airline CSV, or (``data_dir`` alone) on the
    airline tweets the shipped heads held out of training. ``baseline="svm"`` scores the
    same tweets with the TF-IDF + LinearSVC (:func:`training.baseline.build_baseline`)
    trained on the rest of ``data_dir``'s airline tweets, the ones the heads trained on."""
    from training.data import airline_sides

    ranker = TextRanker(artifacts)
    sides = airline_sides(data_dir, ranker.folder) if data_dir is not None else None  # (hold-out, train)
    if csv_path is not None:
        data = read_airline(csv_path)
    elif sides is not None:
        data = sides[0]
    else:
        raise ValueError("give a CSV, or the data directory (its airline hold-out)")
    if baseline is not None:
        from training.baseline import build_baseline

        if baseline != "svm":
            raise ValueError(f"unknown baseline {baseline!r}: svm")
        if sides is None:
            raise ValueError("the baseline trains on the airline tweets outside the hold-out: give a data directory")
        model = build_baseline().fit(sides[1].texts, sides[1].labels)
        scores = model.decision_function(data.texts)[:, [list(model.classes_).index(k) for k in range(3)]]
        name = "baseline:svm"
    else:
        # the airline head's sentence member reads them, where it has one
        remember_cached(ranker, data.texts, [ranker.catalog.lookup(e).char for e in data.label_emojis])
        scores, name = ranker.scores_in_chunks(data.texts, data.label_emojis), ranker.version
    m = ranking_metrics(scores, data.labels, k=1)
    return {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "n": len(data.texts), "model_version": name}


def _catalog_rows(
    ranker: TextRanker, csv_path, data_dir, split: str | None, emojis_in_text: bool, model: bool, yardsticks: bool
):
    """The rows :func:`evaluate_emojis` ranks: a CSV, the model's tune rows or one side of
    the whole-catalog split (refused where ``model``, the model is scored and trained on it,
    or ``yardsticks``, yardsticks trained on the train side score them)."""
    from training.data import load_twemoji_tweets, require_unseen, shipped_pool

    if csv_path is not None:
        read = read_emojis_in_text if emojis_in_text else read_emoji_csv
        return read(csv_path, ranker.catalog)
    if data_dir is not None and split in ("tune", "train") and yardsticks:
        which = "which holds the tune rows" if split == "tune" else "so its figures there are in-sample"
        raise DataError(f"a yardstick trains on the train side, {which}: use --split val or a CSV")
    if data_dir is not None and split == "tune":
        draw = shipped_pool(data_dir, ranker.folder, ranker.catalog)
        return draw.take(draw.tune)
    if data_dir is not None and split is not None:
        if model:
            require_unseen(ranker.folder, split)
        return load_twemoji_tweets(data_dir, split, ranker.catalog)
    raise ValueError("give a CSV, or a data directory and a split")


class _RankingScorer:
    """Whole-catalog scores of the model's ranking for chunks of texts, keeping what the
    bot's auto-react would add to each (:func:`models.reactions.reactions`)."""

    def __init__(self, ranker: TextRanker, terms: dict[str, bool], count: int, threshold: float, never=()):
        self.ranker, self.terms = ranker, terms
        self.count, self.threshold, self.never = count, threshold, tuple(never)
        self.reacted: list[list[str]] = []

    def __call__(self, chunk: list[str]) -> np.ndarray:
        k = self.count + len(self.never)
        s, ranked = self.ranker.score_and_rank(chunk, k, allow_empty=True, **self.terms)
        self.reacted.extend(
            [r.emoji for r in reactions(without(row, self.never, self.count), self.threshold)] for row in ranked
        )
        return s


def _tally_in_chunks(
    scorer, texts: list[str], gold: list[np.ndarray], hidden: list[int], batch: int, progress: bool, desc="ranking"
) -> CatalogTally:
    """The :class:`training.metrics.CatalogTally` of the scores of ``texts``, ranked a chunk
    at a time (the columns ``hidden`` last, as never shown), with a progress bar on long
    files; only a chunk's scores are held at once, however long the file."""
    from tqdm import tqdm

    tally = CatalogTally()
    with tqdm(total=len(texts), desc=desc, unit="text", disable=not progress, leave=False) as bar:
        for i in range(0, len(texts), batch):
            chunk = texts[i : i + batch]
            s = scorer(chunk)
            s[:, hidden] = -np.inf
            tally.add(s, gold[i : i + batch])
            bar.update(len(chunk))
    return tally


def evaluate_emojis(
    csv_path=None,
    artifacts: str | os.PathLike | None = None,
    progress: bool = True,
    batch: int = 512,
    data_dir: str | os.PathLike | None = None,
    split: str | None = None,
    baseline: str | None = None,
    emojis_in_text: bool = False,
    react_count: int = AUTO_REACT_COUNT,
    react_threshold: float = AUTO_REACT_THRESHOLD,
    never: str = "",
    read_at: tuple[float, float, float, float] | None = None,
    **terms: bool,
) -> dict[str, Any]:
    """Rank the whole catalog for every text of a ``text,emojis`` CSV (no candidate list),
    or of one side of the whole-catalog tweets' split (``data_dir`` + ``split``), or of the
    model's tune rows (``split="tune"``: the rows its SQAM never trained on that chose its
    epoch and weights, and that the retrain gate reads for a model trained on every tweet).
    ``emojis_in_text``: the CSV needs only a ``text`` column, its gold emojis are the ones
    in each text, taken out before ranking (:func:`training.data.read_emojis_in_text`).

    ``terms`` leave parts of the ranking out (``names=False``, …, ablations) or put the heads
    over the catalog (``heads_on_catalog=True``), as :class:`models.ranker.Terms` names them;
    the model version in the result says which.
    ``baseline`` ``popularity`` or ``svm`` scores the same rows with that yardstick
    (trained on the split's train side) instead of the shipped model.

    ``auto_react`` (the model's rankings only: a yardstick has no fit) is what the bot's
    auto-react would add to these messages with ``react_count`` and ``react_threshold``
    (:func:`models.reactions.reactions`): how many messages get a reaction, how many
    reactions, and how many of them are an emoji the writer used (``precision``).

    ``never``: a channel's never-list as an admin types it ("😘 💋"): those emojis are
    taken out of every ranking, as the bot takes them out of what it posts
    (:func:`models.reactions.without`); a row whose writer used one of them can then be
    found only through its other emojis.

    ``read_at`` (popularity's top-5 and MRR, the SVM's top-5 and MRR): the figures the two
    yardsticks score on a collection we lack (the issue gives them for its held-out sets).
    ``reading`` is then what the model would score there if that collection were these rows
    reweighted as little as can be (:func:`training.metrics.tilted_weights`) so that the
    yardsticks, trained on the train side, score those figures on them: top-1, top-5 and MRR
    at those weights, with top-5's standard error and the rows the weights are worth. An
    assumption, not a measurement: rows the yardsticks find alike are taken to be alike for
    the model."""
    parts = Terms(**terms)  # an unknown part fails here, before any reading
    if read_at is not None:
        if baseline is not None:
            raise DataError("--read-at reads the model against both yardsticks: leave --baseline out")
        if data_dir is None:
            raise DataError("--read-at: the yardsticks train on the whole-catalog tweets: give --data-dir")
        if len(read_at) != 4:
            raise DataError(f"--read-at: popularity's top-5 and MRR, then the SVM's; not {read_at}")
    kept_out: tuple[str, ...] = ()
    if never.strip():  # a typo fails here too, before the model loads
        from models.catalog import EmojiCatalog

        try:
            kept_out = never_list(EmojiCatalog.load(), never, limit=None)
        except ValueError as exc:
            raise DataError(f"--never: {exc}") from None
    ranker = TextRanker(artifacts)
    yardsticks = baseline is not None or read_at is not None
    data = _catalog_rows(
        ranker, csv_path, data_dir, split, emojis_in_text, model=baseline is None, yardsticks=yardsticks
    )
    keep, texts, gold = data.in_catalog(ranker.index.positions)
    skipped = data.skipped + len(data.gold) - len(keep)  # in the catalog, not in the model

    if parts.heads_on_catalog and ranker.heads is None:
        raise ValueError(f"--heads-on-catalog: {ranker.heads_note}")
    ranking = _RankingScorer(ranker, terms, react_count, react_threshold, kept_out)
    scorer = ranking
    name = ranker.version + "".join(
        "+heads" if part == "heads_on_catalog" else f"-{part.replace('_', '-')}" for part in parts.changed()
    )
    if baseline is not None:
        if data_dir is None:
            raise ValueError("a baseline trains on the whole-catalog tweets: give --data-dir")
        scorer = _yardstick(baseline, data_dir, ranker.chars, progress)
        name = f"baseline:{baseline}"
    hidden = [i for i, e in enumerate(ranker.chars) if e in kept_out]
    tally = _tally_in_chunks(scorer, texts, gold, hidden, batch, progress)
    out = {"rows": len(texts), "rows_skipped": skipped, **tally.figures(), "model_version": name}
    if kept_out:
        out["never"] = " ".join(kept_out)
    if baseline is None:
        out["auto_react"] = reaction_figures(
            ranking.reacted, [data.gold[i] for i in keep], react_count, react_threshold
        )
    if read_at is not None:
        out["reading"] = _reading(tally.ranks(), texts, gold, ranker.chars, data_dir, read_at, batch, progress)
    return out


def _yardstick(kind: str, data_dir, chars: list[str], progress: bool = False):
    """The scorer of a yardstick trained on the train side (popularity or the SVM; its
    training takes a minute or two, said on standard error where ``progress``)."""
    import sys

    from training.baseline import CatalogBaseline

    if progress and kind == "svm":
        print("training the SVM yardstick on the train side (a minute or two)…", file=sys.stderr, flush=True)
    return partial(CatalogBaseline(kind, data_dir).scores, chars=chars)


def _reading(best_rank, texts, gold, chars, data_dir, read_at, batch: int, progress: bool) -> dict[str, Any]:
    """``evaluate_emojis``'s ``reading``: the model's figures at the weights of the rows
    under which popularity and the SVM score ``read_at`` (each one's top-5 and MRR). The
    yardsticks rank every emoji, a never-list's too, as they did for the figures given."""
    from training.metrics import tilted_weights, weighted_figures

    columns, yardsticks = [], {}
    for k, kind in enumerate(("popularity", "svm")):
        scorer = _yardstick(kind, data_dir, chars, progress)
        ranks = _tally_in_chunks(scorer, texts, gold, [], batch, progress, desc=kind).ranks()
        columns += [ranks <= 5, 1.0 / ranks]
        yardsticks[kind] = {
            "top5_accuracy": float(read_at[2 * k]),
            "mrr": float(read_at[2 * k + 1]),
            "here": {"top5_accuracy": float(np.mean(ranks <= 5)), "mrr": float(np.mean(1.0 / ranks))},
        }
    try:
        weights = tilted_weights(np.stack(columns, axis=1).astype(np.float64), read_at)
    except ValueError as exc:
        raise DataError(f"--read-at: {exc}") from None
    return {"yardsticks": yardsticks, **weighted_figures(best_rank, weights)}


def reaction_figures(reacted: list[list[str]], gold: list, count: int, threshold: float) -> dict[str, Any]:
    """Auto-react over labelled messages: ``reacted[i]`` the emojis added to row i,
    ``gold[i]`` the emojis its writer used (catalog form)."""
    n = sum(len(r) for r in reacted)
    right = sum(sum(e in set(g) for e in r) for r, g in zip(reacted, gold, strict=True))
    return {
        "count": count,
        "threshold": threshold,
        "messages_reacted": sum(bool(r) for r in reacted),
        "reactions": n,
        "right": right,
        "precision": round(right / n, 4) if n else None,
    }


def evaluate_pictures(
    npz_path,
    artifacts: str | os.PathLike | None = None,
    max_pictures: int | None = None,
    progress: bool = True,
    holdout: bool = False,
    sheet: str | os.PathLike | None = None,
    sheet_rows: int = 12,
) -> dict[str, Any]:
    """The WGAN's emoji distributions (50 samples per photo) on a file in the layout of
    `tinyimagenet_emoji/train.npz`, over the file's own class emojis; the discriminative
    baseline's softmax on the same photos, side by side; and ``whole_catalog``, the answer
    the bot gives (samples over every catalog emoji): how often its mode and its top 5
    hold the photo's emoji, and how often the mode is one of the file's emojis at all.

    ``holdout`` scores only the photos the shipped models never trained on, when the file
    is the one they were trained on: the same stratified split as `emojibot train wgan`,
    from the seed and fraction in the manifest. ``sheet`` writes a PNG with one scored photo
    per class (up to ``sheet_rows``): the photo, its top emojis, and the novel emoji.
    """
    from models.artifacts import read_manifest
    from models.picture import PictureModel
    from training.wgan import load_pictures, picture_metrics, stratified_split

    model = PictureModel(artifacts)
    trained = read_manifest(model.folder).get("pictures", {})
    settings = trained.get("settings", {})
    if holdout:  # the photos training read, split the way it split them
        if "val_fraction" not in settings:
            raise ValueError("--holdout: the manifest does not say how the picture models were trained")
        max_pictures = settings.get("max_pictures")
    data = load_pictures(npz_path, max_pictures, progress=progress)
    rows = np.arange(len(data.pictures))
    if holdout:
        counts = trained.get("pictures", {})
        if counts.get("train", 0) + counts.get("val", 0) != len(rows):
            raise ValueError(
                f"--holdout needs the file the models were trained on ({counts} photos); {npz_path} has {len(rows)}"
            )
        _, rows = stratified_split(data.classes, float(settings["val_fraction"]), int(settings["seed"]))
    pictures, labels, classes = data.pictures[rows], data.labels[rows], data.classes[rows]
    class_label = np.asarray([data.emojis.index(e) for e in data.class_emoji])
    probs, top5_all = [], []
    for i in range(0, len(pictures), 64):
        _, key, names = model.distributions(pictures[i : i + 64], data.emojis)
        probs.append(key)
    for i in range(0, len(pictures), 64):  # the bot's answer: samples over every emoji
        p_all, key_all, all_names = model.distributions(pictures[i : i + 64])
        idx = np.argsort(-key_all, axis=1)[:, :5]
        sampled = np.take_along_axis(p_all, idx, axis=1) > 0  # the bot names only emojis a sample chose
        top5_all.append(np.where(sampled, idx, -1))
    p = np.concatenate(probs)
    assert names == data.emojis
    wgan = picture_metrics(p, labels, classes, class_label)
    top5 = np.asarray([*all_names, ""], dtype=object)[np.concatenate(top5_all)]  # -1: none
    truth = np.asarray(data.emojis, dtype=object)[labels]
    whole = {
        "top1_accuracy": float(np.mean(top5[:, 0] == truth)),
        "top5_accuracy": float(np.mean((top5 == truth[:, None]).any(axis=1))),
        "mode_in_dataset": float(np.mean(np.isin(top5[:, 0], data.emojis))),
        "candidates": len(all_names),
    }
    cls_p, cls_names = model.classify(pictures, data.emojis)
    order = [cls_names.index(e) for e in data.emojis if e in cls_names]
    baseline = None
    if len(order) == len(data.emojis):
        baseline = picture_metrics(cls_p[:, order], labels, classes, class_label)
    if sheet is not None:
        _picture_sheet(sheet, model, pictures, p, classes, data.emojis, sheet_rows)
    return {
        **wgan,
        "classifier_baseline": baseline,
        "whole_catalog": whole,
        "holdout": holdout,
        "samples": model.samples,
        "target_space": model.meta["target_space"],
        "model_version": model.version,
    }


def _picture_sheet(path, model, pictures, probs, classes, emojis: list[str], rows: int) -> None:
    """The first photo of `rows` classes spread over all of them, drawn as in training."""
    from models.catalog import EmojiCatalog
    from models.drawing import EmojiDecoder
    from training.wgan import SampleSheet

    present = np.unique(classes)
    picked = present[np.linspace(0, len(present) - 1, min(rows, len(present))).round().astype(int)]
    show = np.asarray([int(np.nonzero(classes == c)[0][0]) for c in picked])
    sheet = SampleSheet(EmojiDecoder(model.folder), EmojiCatalog.load().pictures(), model.index.positions)
    sheet.save(Path(path), pictures[show], probs[show], emojis)
