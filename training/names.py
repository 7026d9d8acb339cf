"""`emojibot train names`: build the name-match matrix (``models.names``) for the shipped
vocabulary and catalog, and choose its weight on the SQAM's tune rows.

The tune rows are the tenth of the whole-catalog train side that `train sqam` kept aside
to pick its epoch (same seed, same draw): the SQAM never trained on them, and the
validation side is never looked at here. Each name word counts by how rare it is in the
other train-side tweets (``word_rarity``). The weight maximises the tune rows' MRR over a
small grid; the validation figures are then measured once with the weight chosen and
recorded.

It also builds the *meaning match* (``models.names``): each vocabulary word and each
emoji's names embedded by all-MiniLM-L6-v2, a cell wherever their cosine reaches
``MEANING_FLOOR``. Embedding some 44,000 words takes about 4 minutes; the cosines are kept
in the file with digests of the words and the names, so a rerun for the same vocabulary
(no `train sqam` since) reuses them and takes seconds. Its weight is chosen after the
names' weight, on the same tune rows, by the popularity mix's rule (``choose_meaning_weight``).
"""

from __future__ import annotations

import os
import sys
from typing import Any

import numpy as np

from models.artifacts import (
    CHARS_FILE,
    MEANINGS_FILE,
    NAMES_FILE,
    VOCAB_FILE,
    artifacts_dir,
    require,
    update_manifest,
)
from models.names import NameMatch, vocab_digest
from models.ranker import SQAM_ALONE, TextRanker
from training.metrics import catalog_metrics, rounded, within_tolerance

WEIGHTS = (0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 12.0)
# The meaning match: the cosine from which a word counts as near an emoji's name (on the
# train-side recipe's tune rows 0.5 did best of 0.5–0.65, README), and its weights.
MEANING_FLOOR = 0.5
MEANING_WEIGHTS = (0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0)
MEANING_TOLERANCE = 0.002  # what it may cost the tune rows' top-5 and MRR (the popularity mix's)


def name_phrases(catalog) -> tuple[list[str], list[str]]:
    """Per emoji, its CLDR name and its short names as words ("pile of poo", "hankey poop
    shit"): what a word is compared with."""
    cldr = [e.cldr_name for e in catalog]
    short = [" ".join(n.replace("_", " ") for n in e.short_names) for e in catalog]
    return cldr, short


def meaning_similarity(words: list[str], catalog, encoder=None, floor: float = MEANING_FLOOR, progress: bool = True):
    """(vocabulary, catalog) sparse: ``(s − floor) / (1 − floor)`` where the cosine ``s``
    of a word and an emoji's CLDR name or short names (the higher) reaches ``floor``."""
    from scipy.sparse import csr_matrix, vstack

    from models.minilm import MiniLM
    from training.minilm import PLACEHOLDER_WORDS

    enc = encoder or MiniLM()
    cldr, short = name_phrases(catalog)
    names = np.stack([enc.encode(cldr, batch=512), enc.encode(short, batch=512)])  # (2, catalog, 384)
    v = enc.encode([PLACEHOLDER_WORDS.get(w, w) for w in words], batch=1024, progress=progress)
    for i, w in enumerate(words):
        if w.startswith("<"):  # padding, unknown word
            v[i] = 0.0
    parts = []
    for i in range(0, len(v), 4096):
        sim = np.max(names @ v[i : i + 4096].T, axis=0).T  # the encoder's vectors are unit length
        parts.append(csr_matrix(np.where(sim >= floor, (sim - floor) / (1.0 - floor), 0.0).astype(np.float32)))
    return vstack(parts, format="csr")


def names_digest(catalog) -> str:
    cldr, short = name_phrases(catalog)
    return vocab_digest(cldr + short)


def _cached_similarity(path, words: list[str], catalog, floor: float):
    """The cosines of an earlier run for the same words, names and floor, else None."""
    from scipy.sparse import csr_matrix

    if not path.exists():
        return None
    with np.load(path) as z:
        if "sim_data" not in z.files:
            return None
        key = (str(z["sim_words"]), str(z["sim_names"]), float(z["sim_floor"]))
        if key != (vocab_digest(words), names_digest(catalog), floor):
            return None
        return csr_matrix((z["sim_data"], z["sim_indices"], z["sim_indptr"]), shape=(len(words), len(catalog)))


def choose_meaning_weight(grid: list[dict[str, Any]], tolerance: float = MEANING_TOLERANCE) -> float:
    """The weight with the best tune macro-recall@5 among those whose top-5 and MRR are each
    at most ``tolerance`` below no meaning match (the grid's first row); the smaller on a
    tie. The match is for the rare, specific emoji a message means without naming it, which
    macro-recall@5 measures; top-5 and MRR must not pay for it."""
    ok = within_tolerance(grid, {"top5_accuracy": tolerance, "mrr": tolerance})
    return max(ok, key=lambda g: (g["macro_recall_at_5"], -g["weight"]))["weight"]


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


def _sqam_scores(ranker: TextRanker, texts: list[str]) -> np.ndarray:
    """The SQAM alone over the whole catalog (what the names and meanings are added to)."""
    return ranker.scores_in_chunks(texts, chunk=1024, **SQAM_ALONE)


def _match_scores(ranker: TextRanker, texts: list[str], matcher: NameMatch) -> np.ndarray:
    """A name or meaning match over the whole catalog, without its weight."""
    feat = ranker.featurizer
    return np.concatenate(
        [matcher.scores(feat.featurize(texts[i : i + 1024]).word_ids) for i in range(0, len(texts), 1024)]
    )


def _choose_name_weight(names: NameMatch, base: np.ndarray, match: np.ndarray, gold) -> list[dict[str, Any]]:
    """Set ``names.weight`` to the tune rows' best MRR of ``WEIGHTS`` (the smaller on a tie);
    the grid. (MRR + macro-recall@5, the SQAM's epoch score, chose 8.0, where names of
    another sense crowd out the message's own emojis: README.)"""
    grid = [{"weight": w, **rounded(catalog_metrics(base + w * match, gold))} for w in WEIGHTS]
    names.weight = max(grid, key=lambda g: (g["mrr"], -g["weight"]))["weight"]
    return grid


def _meaning_match(out, ranker: TextRanker, catalog, rarity: np.ndarray):
    """The meaning match (weight 0 until chosen) and its cosines: those of an earlier run
    for the same vocabulary, else embedded anew with MiniLM."""
    from scipy.sparse import diags

    words = ranker.featurizer.vocab.words
    sim = _cached_similarity(out / MEANINGS_FILE, words, catalog, MEANING_FLOOR)
    if sim is None:
        print(f"names: embedding {len(words):,} words and the emoji names with MiniLM (minutes)", file=sys.stderr)
        sim = meaning_similarity(words, catalog)
    return NameMatch(diags(rarity.astype(np.float32)) @ sim, 0.0, vocab_digest(words)), sim.tocsr()


def _save_meanings(path, meanings: NameMatch, sim, words: list[str], catalog) -> None:
    """The meaning match, with the cosines and the digests a rerun reuses them by."""
    path.unlink(missing_ok=True)
    meanings.save(
        path,
        sim_data=sim.data,
        sim_indices=sim.indices,
        sim_indptr=sim.indptr,
        sim_words=np.array(vocab_digest(words)),
        sim_names=np.array(names_digest(catalog)),
        sim_floor=np.array(MEANING_FLOOR),
    )


def _val_report(ranker: TextRanker, val, names: NameMatch, meanings: NameMatch) -> dict[str, Any]:
    """The validation side's figures with the weights chosen (measured once, never tuned on)."""
    _, texts, gold = val.in_catalog(ranker.index.positions)
    base = _sqam_scores(ranker, texts)
    named = base + names.weight * _match_scores(ranker, texts, names)
    meant = named + meanings.weight * _match_scores(ranker, texts, meanings)
    return {
        "twemoji_val_without": rounded(catalog_metrics(base, gold)),
        "twemoji_val_with": rounded(catalog_metrics(named, gold)),
        "meanings_twemoji_val_with": rounded(catalog_metrics(meant, gold)),
    }


def train_names(data_dir: str | os.PathLike, out_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """Build the name match and the meaning match for the shipped vocabulary, choose their
    weights on the SQAM's tune rows, in that order, and write both."""
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

    tune_texts = [whole.texts[i] for i in tune_idx]
    tune_gold = [np.asarray([pos[c] for c in whole.gold[i]]) for i in tune_idx]
    base, match = _sqam_scores(ranker, tune_texts), _match_scores(ranker, tune_texts, names)
    grid = _choose_name_weight(names, base, match, tune_gold)
    (out / NAMES_FILE).unlink(missing_ok=True)
    names.save(out / NAMES_FILE)

    meanings, sim = _meaning_match(out, ranker, catalog, rarity)
    named = base + names.weight * match
    meant = _match_scores(ranker, tune_texts, meanings)
    meaning_grid = [{"weight": w, **rounded(catalog_metrics(named + w * meant, tune_gold))} for w in MEANING_WEIGHTS]
    meanings.weight = choose_meaning_weight(meaning_grid)
    _save_meanings(out / MEANINGS_FILE, meanings, sim, ranker.featurizer.vocab.words, catalog)

    info: dict[str, Any] = {
        "weight": names.weight,
        "words": int(names.matrix.shape[0]),
        "entries": int(names.matrix.nnz),
        "tune_rows": len(tune_idx),
        "tune_grid": grid,
        "meanings": {
            "floor": MEANING_FLOOR,
            "weight": meanings.weight,
            "entries": int(meanings.matrix.nnz),
            "tolerance": MEANING_TOLERANCE,
            "tune_grid": meaning_grid,
        },
    }
    if val is not None:  # a model trained on every tweet has no val side to report on
        report = _val_report(ranker, val, names, meanings)
        info["meanings"]["twemoji_val_with"] = report.pop("meanings_twemoji_val_with")
        info.update(report)
    update_manifest(out, "names", info)
    return info
