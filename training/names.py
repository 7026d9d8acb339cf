"""`emojibot train names`: build the name-match matrix (``models.names``) for the shipped
vocabulary and catalog, and choose its weight on the SQAM's tune rows.

The tune rows are the tenth of the whole-catalog train side that `train sqam` kept aside
to pick its epoch (same seed, same draw): the SQAM never trained on them, and the
validation side is never looked at here. Each name word counts by how rare it is in the
other train-side tweets (``word_rarity``). The weight maximises the tune rows' MRR over a
small grid; the validation figures are then measured once with the weight chosen and
recorded.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from models.artifacts import CHARS_FILE, NAMES_FILE, VOCAB_FILE, artifacts_dir, require, update_manifest
from models.names import NameMatch
from models.ranker import TextRanker
from training.metrics import catalog_metrics, rounded

WEIGHTS = (0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 12.0)


def word_rarity(ranker: TextRanker, texts: list[str]) -> np.ndarray:
    """Per vocabulary word, ``log(N / df) / log(N)`` over ``texts`` (N of them; 1 for a word
    none of them has): how little an everyday message says it."""
    n = len(texts)
    df = np.zeros(len(ranker.featurizer.vocab.words), np.float64)
    for i in range(0, n, 2048):
        ids = ranker.featurizer.featurize(texts[i : i + 2048]).word_ids
        for row in ids:
            df[np.unique(row)] += 1
    return np.clip(np.log(n / np.maximum(df, 1.0)) / np.log(n), 0.0, 1.0)


def train_names(data_dir: str | os.PathLike, out_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    from models.catalog import EmojiCatalog
    from training.data import shipped_pool

    out = artifacts_dir(out_dir)
    require(out, VOCAB_FILE, CHARS_FILE)
    ranker = TextRanker(out)
    catalog = EmojiCatalog.load(data_dir)
    if catalog.chars != ranker.chars:
        raise ValueError("the data directory's catalog is not the one the shipped model ranks")
    draw = shipped_pool(data_dir, out, catalog)  # the rows and tune draw `train sqam` used
    whole, val, tune_idx, rest = draw.pool, draw.reported, draw.tune, draw.rest
    rarity = word_rarity(ranker, [whole.texts[i] for i in rest])
    names = NameMatch.build(list(catalog), ranker.featurizer.vocab.words, doc_freq=rarity)
    pos = ranker.index.positions

    def parts(texts):
        base, match = [], []
        for i in range(0, len(texts), 1024):
            chunk = texts[i : i + 1024]
            base.append(ranker.scores(chunk, allow_empty=True, names=False, catalog_head=False, prior=False))
            match.append(names.scores(ranker.featurizer.featurize(chunk).word_ids))
        return np.concatenate(base), np.concatenate(match)

    tune_texts = [whole.texts[i] for i in tune_idx]
    tune_gold = [np.asarray([pos[c] for c in whole.gold[i]]) for i in tune_idx]
    base, match = parts(tune_texts)
    grid = []
    for w in WEIGHTS:
        m = catalog_metrics(base + w * match, tune_gold)
        grid.append({"weight": w, **rounded(m)})
    # MRR, the ranking's headline: MRR + macro-recall@5 (the SQAM's epoch score) chose
    # 8.0, where names of another sense crowd out the message's own emojis (README)
    best = max(grid, key=lambda g: (g["mrr"], -g["weight"]))
    names.weight = best["weight"]
    (out / NAMES_FILE).unlink(missing_ok=True)
    names.save(out / NAMES_FILE)
    info: dict[str, Any] = {
        "weight": names.weight,
        "words": int(names.matrix.shape[0]),
        "entries": int(names.matrix.nnz),
        "tune_rows": len(tune_idx),
        "tune_grid": grid,
    }
    if val is not None:  # a model trained on every tweet has no val side to report on
        keep = [i for i, g in enumerate(val.gold) if any(c in pos for c in g)]
        vb, vm = parts([val.texts[i] for i in keep])
        vgold = [np.asarray([pos[c] for c in val.gold[i] if c in pos]) for i in keep]
        info["twemoji_val_without"] = rounded(catalog_metrics(vb, vgold))
        info["twemoji_val_with"] = rounded(catalog_metrics(vb + names.weight * vm, vgold))
    update_manifest(out, "names", info)
    return info
