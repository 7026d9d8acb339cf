"""`emojibot train sqam`: train the Siamese question-answer model over the whole catalog.

Training examples, all read through ``data_dir``:
- the train side of the whole-catalog tweets (``twemoji_tweets``, split by
  :func:`training.data.split_emoji_rows`), minus a tenth kept aside as the *tune* rows that
  pick the epoch: the val side is only ever reported. With ``rows="all"`` (the model that
  ships, once the same recipe has been measured on the val side) every tweet, minus the
  tune rows;
- TweetEval emoji train tweets (20 popular emojis), down-weighted (``tweeteval_weight``,
  off by default), each a choice among those 20 alone (``Examples.targets``), the 8,000 on
  which `train catalog-head` chooses its weights left out;
- every catalog emoji's names and descriptions (catalog, emoji2vec), so that each emoji is
  trained as an answer at least through its words.

Text features: hashed n-grams, and static word vectors distilled from all-MiniLM-L6-v2
(``training.minilm``); the answer side is the emoji's VAE code and the MiniLM embedding of
its descriptions. The loss is a softmax over the whole catalog (``models.sqam``).

Written as keras-io writes models: ``SQAM`` is a ``keras.Model`` with its own
``train_step``; batches come from a ``keras.utils.PyDataset``; callbacks keep the best epoch
(on the tune rows, with the optimizer's moving average of the weights) and print what the
model answers for a few everyday messages after each epoch.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from models.artifacts import (
    ANSWERS_FILE,
    BIAS_FILE,
    CHARS_FILE,
    CODES_FILE,
    QUESTION_FILE,
    VOCAB_FILE,
    ArtifactError,
    artifacts_dir,
    require,
    update_manifest,
)
from models.catalog import EmojiCatalog, EmojiIndex
from models.heads import quantize_columns
from models.ranker import SQAM_ALONE, TextRanker, dequantize_rows
from models.sqam import SQAM, SQAMConfig
from models.text import MAX_NGRAMS, MAX_TOKENS, NGRAM_BUCKETS, TextFeaturizer, TweetTokenizer, Vocabulary
from training.data import CHOICE_TEXTS, EmojiRows, choice_sample, draw_pool, load_tweeteval
from training.keras_data import callback_base, py_dataset_base
from training.metrics import catalog_metrics, ranking_metrics, rounded

SAMPLE_MESSAGES = (
    "pizza party in the kitchen at noon",
    "my flight got cancelled, stuck at the airport",
    "it's snowing outside, first snow of the year",
    "the build is green, shipping it",
)


@dataclass
class TrainSettings:
    epochs: int = 3
    batch_size: int = 256
    learning_rate: float = 2e-3
    weight_decay: float = 0.02  # decoupled (AdamW)
    ema: float = 0.99  # the weights kept are the optimizer's moving average (0: the raw ones)
    ngram_dropout: float = 0.3  # share of a text's n-grams hidden in each training step
    # A TweetEval tweet's weight next to a whole-catalog tweet. Off: at 0.3 it gains
    # TweetEval's own kind of tweet, keeps the val side level and costs the TweetEval
    # head's macro-F1 and auto-react's precision (docs/TEXT_RANKING.md).
    tweeteval_weight: float = 0.0
    description_weight: float = 1.0  # an emoji description's weight next to a tweet's
    tune_fraction: float = 0.1  # of the whole-catalog pool: picks the epoch
    # The whole-catalog pool (training.data.TWEMOJI_ROWS): "train", the train side, its
    # recipe reported on the val side; "all", every tweet, for the model that ships.
    rows: str = "train"
    train_share: float = 1.0  # a seeded share of the pool's training rows (learning curves)
    top_words: int = 40_000  # GloVe's most frequent words, plus every training word it knows
    word_dim: int = 128  # principal axes kept of the distilled MiniLM word vectors
    seed: int = 13
    max_tweets: int | None = None  # for quick runs and tests
    model: SQAMConfig = field(default_factory=SQAMConfig)


def answer_features(codes: np.ndarray, semantic: np.ndarray, use_semantic: bool) -> np.ndarray:
    """The answer tower's input: VAE code (+ semantic vector), standardised over the catalog
    so that neither part drowns the other."""
    f = np.concatenate([codes, semantic], axis=1) if use_semantic else codes.copy()
    return ((f - f.mean(axis=0)) / (f.std(axis=0) + 1e-6)).astype(np.float32)


def description_vectors(catalog: EmojiCatalog, encoder) -> np.ndarray:
    """Each emoji's mean MiniLM embedding of its first 8 names and descriptions (unit length)."""
    texts, owner = [], []
    for i, e in enumerate(catalog):
        for d in e.descriptions[:8]:
            texts.append(d)
            owner.append(i)
    out = np.zeros((len(catalog), encoder.dim), np.float32)
    np.add.at(out, np.asarray(owner, np.int64), encoder.encode(texts, batch=512))
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-8)


def _load_codes(folder: Path, catalog: EmojiCatalog) -> np.ndarray:
    require(folder, CODES_FILE, CHARS_FILE)
    codes = np.load(folder / CODES_FILE)
    if EmojiIndex.load(folder / CHARS_FILE).chars != catalog.chars:
        raise ArtifactError("the VAE codes were made for another catalog; run `emojibot train vae` again")
    if not np.isfinite(codes).all():
        raise ArtifactError(f"{folder / 'emoji_codes.npy'} holds non-finite codes; run `emojibot train vae` again")
    return codes.astype(np.float32)


def ngram_idf(ngram_ids: np.ndarray) -> np.ndarray:
    """Smoothed inverse document frequency of each hash bucket over the training texts:
    ``log((1 + N) / (1 + df)) + 1`` (scikit-learn's formula); padding gets 0."""
    n = len(ngram_ids)
    df = np.zeros(NGRAM_BUCKETS, np.float64)
    for row in ngram_ids:
        u = np.unique(row)
        df[u[u != 0]] += 1
    idf = np.log((1.0 + n) / (1.0 + df)) + 1.0
    idf[0] = 0.0
    return idf.astype(np.float32)


class Examples:
    """Featurised texts with their target distribution over the catalog and a weight."""

    def __init__(
        self,
        feat: TextFeaturizer,
        texts: list[str],
        gold: list[list[int]],
        weight,
        n_emojis: int,
        among: list[np.ndarray | None] | None = None,
    ):
        b = feat.featurize(texts, pad_to=(MAX_TOKENS, MAX_NGRAMS))
        self.W, self.N = b.word_ids, b.ngram_ids
        self.L = np.maximum((self.W != 0).sum(axis=1), 1)
        self.G = np.maximum((self.N != 0).sum(axis=1), 1)
        self.gold = gold
        self.weight = np.asarray(weight, np.float32)
        self.n_emojis = n_emojis
        # Per row, the catalog rows it chose among (None: the whole catalog)
        self.among = among if among is not None else [None] * len(gold)

    def __len__(self) -> int:
        return len(self.gold)

    def inputs(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.W[idx, : int(self.L[idx].max())], self.N[idx, : int(self.G[idx].max())]

    def targets(self, idx: np.ndarray) -> np.ndarray:
        """Each row's gold emojis share its probability mass; a row that chose among a few
        emojis marks the others −1 (``models.sqam.SQAM._loss`` leaves them out)."""
        y = np.zeros((len(idx), self.n_emojis), np.float32)
        for r, i in enumerate(idx):
            if self.among[i] is not None:
                y[r] = -1.0
                y[r, self.among[i]] = 0.0
            y[r, self.gold[i]] = 1.0 / len(self.gold[i])
        return y


class TrainingBatches(py_dataset_base()):  # type: ignore[misc]
    """Shuffled batches ((word ids, n-gram ids), targets, weights), with a share of each
    text's n-grams hidden anew every time (it keeps the n-gram table from memorising)."""

    def __init__(self, examples: Examples, batch_size: int, ngram_dropout: float, seed: int):
        super().__init__()
        self.ex, self.batch_size, self.ngram_dropout = examples, batch_size, ngram_dropout
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(len(examples))

    def __len__(self) -> int:
        return int(np.ceil(len(self.ex) / self.batch_size))

    def __getitem__(self, i: int):
        idx = self.order[i * self.batch_size : (i + 1) * self.batch_size]
        # Full width: Keras fixes the batch shapes from the first batch it reads.
        W, N = self.ex.W[idx], self.ex.N[idx]
        if self.ngram_dropout:
            N = np.where(self.rng.random(N.shape) < self.ngram_dropout, 0, N)
            N[:, 0] = self.ex.N[idx, 0]  # every text keeps at least one n-gram
        return (W, N), self.ex.targets(idx), self.ex.weight[idx]

    def on_epoch_end(self) -> None:
        self.order = self.rng.permutation(len(self.ex))


def model_scores(model: SQAM, ex: Examples, batch: int = 1024) -> np.ndarray:
    out = []
    for s in range(0, len(ex), batch):
        idx = np.arange(s, min(s + batch, len(ex)))
        out.append(np.asarray(model(ex.inputs(idx), training=False)))
    return np.concatenate(out)


def epoch_score(m: dict[str, float]) -> float:
    """What picks the epoch: MRR + macro-recall@5 on the tune rows. MRR alone peaks an
    epoch or two before the model learns the rarer, specific emojis (macro-recall still
    rising while MRR falls): the sum keeps the epoch that serves both the popular and the
    specific."""
    return m["mrr"] + m["macro_recall_at_5"]


class KeepBestEpoch(callback_base()):  # type: ignore[misc]
    """After each epoch, scores the tune rows with the moving-average weights (when the
    optimizer keeps them) and remembers the weights of the epoch with the best
    :func:`epoch_score`; at the end of training the model holds those."""

    def __init__(self, tune: Examples, verbose: bool = True):
        super().__init__()
        self.tune, self.verbose = tune, verbose
        self.best: tuple[float, int, list[np.ndarray]] | None = None
        self.history: list[dict[str, Any]] = []

    def _with_average(self):
        raw = [v.numpy() for v in self.model.trainable_variables]
        if getattr(self.model.optimizer, "use_ema", False):
            self.model.optimizer.finalize_variable_values(self.model.trainable_variables)
        return raw

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        raw = self._with_average()
        m = catalog_metrics(model_scores(self.model, self.tune), [np.asarray(g) for g in self.tune.gold])
        m = rounded(m)
        m.update(epoch=epoch + 1, loss=round(float((logs or {}).get("loss", float("nan"))), 4))
        self.history.append(m)
        if self.best is None or epoch_score(m) > self.best[0]:
            self.best = (epoch_score(m), epoch + 1, [v.numpy() for v in self.model.trainable_variables])
        for v, value in zip(self.model.trainable_variables, raw, strict=True):
            v.assign(value)
        if self.verbose:
            print(
                f"epoch {epoch + 1}: tune top-5 {m['top5_accuracy']:.3f}  MRR {m['mrr']:.3f}  "
                f"macro-recall@5 {m['macro_recall_at_5']:.3f}",
                file=sys.stderr,
            )

    def on_train_end(self, logs=None) -> None:
        assert self.best is not None
        for v, value in zip(self.model.trainable_variables, self.best[2], strict=True):
            v.assign(value)


class SampleAnswers(callback_base()):  # type: ignore[misc]
    """Prints the top 5 for a few everyday messages after each epoch: what a user would see."""

    def __init__(self, feat: TextFeaturizer, chars: list[str], messages=SAMPLE_MESSAGES):
        super().__init__()
        self.batch = feat.featurize(list(messages))
        self.chars, self.messages = chars, messages

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        s = np.asarray(self.model((self.batch.word_ids, self.batch.ngram_ids), training=False))
        for text, row in zip(self.messages, s, strict=True):
            print(f"  {text[:48]:<48} {' '.join(self.chars[i] for i in np.argsort(-row)[:5])}", file=sys.stderr)


def _tweeteval_rows(
    data_dir, catalog: EmojiCatalog, limit: int | None
) -> tuple[list[str], list[list[int]], np.ndarray]:
    """TweetEval's train tweets but those `train catalog-head` chooses its weights on
    (``training.data.choice_sample``), their emoji's catalog row, and the catalog rows of
    TweetEval's 20 emojis: each tweet chose among those alone."""
    train = load_tweeteval(data_dir, "train")
    col = train.label_rows(catalog)
    keep = np.setdiff1d(np.arange(len(train.texts)), choice_sample(len(train.texts), CHOICE_TEXTS))[:limit]
    texts, gold = [train.texts[i] for i in keep], [[int(col[train.labels[i]])] for i in keep]
    return texts, gold, col


@dataclass
class _TrainingTexts:
    """What `train sqam` trains on: texts, their catalog rows and weights, and how many of
    each kind."""

    texts: list[str]
    gold: list[list[int]]
    weight: np.ndarray
    tweet_gold: list[list[int]]  # the whole-catalog tweets' rows alone (the usage prior)
    among: list[np.ndarray | None]  # the rows each text chose among (None: every emoji)
    sizes: dict[str, int]


def _training_texts(
    data_dir, catalog: EmojiCatalog, draw, train_idx: np.ndarray, s: TrainSettings, rng
) -> _TrainingTexts:
    """The pool's training tweets, TweetEval's (at ``tweeteval_weight``, 0: none) and every
    emoji's names and descriptions (at ``description_weight``)."""
    whole = draw.pool
    tw_texts = [whole.texts[i] for i in train_idx]
    tw_gold = [[catalog.index_of(c) for c in whole.gold[i]] for i in train_idx]
    te_texts, te_gold, te_among = (
        _tweeteval_rows(data_dir, catalog, s.max_tweets) if s.tweeteval_weight else ([], [], None)
    )
    desc_texts, desc_gold = [], []
    for i, e in enumerate(catalog):
        for d in e.descriptions:
            desc_texts.append(d)
            desc_gold.append([i])
    if s.max_tweets:
        sel = rng.permutation(len(desc_texts))[: s.max_tweets // 2]
        desc_texts, desc_gold = [desc_texts[i] for i in sel], [desc_gold[i] for i in sel]
    weight = np.concatenate(
        [
            np.ones(len(tw_texts)),
            np.full(len(te_texts), s.tweeteval_weight),
            np.full(len(desc_texts), s.description_weight),
        ]
    )
    sizes = {"twemoji_tweets": len(tw_texts), "tweeteval": len(te_texts), "descriptions": len(desc_texts)}
    among = [None] * len(tw_texts) + [te_among] * len(te_texts) + [None] * len(desc_texts)
    return _TrainingTexts(
        tw_texts + te_texts + desc_texts, tw_gold + te_gold + desc_gold, weight, tw_gold, among, sizes
    )


def _word_vectors(texts: list[str], s: TrainSettings, encoder, tok, verbose: bool):
    """(vocabulary, int8 word rows, their scales): the training words and GloVe's most
    frequent, each a static vector distilled from MiniLM."""
    from training.data import build_vocabulary
    from training.minilm import static_word_vectors

    if verbose:
        print(f"distilling word vectors from MiniLM ({s.top_words:,} words + training words)", file=sys.stderr)
    words, _ = build_vocabulary([tok.tokenize(t) for t in texts], top_words=s.top_words, seed=s.seed)
    q, scale = quantize_columns(static_word_vectors(words, s.word_dim, encoder, progress=verbose).T)
    return Vocabulary(words), q.T.copy(), scale


def _usage_prior(tweet_gold: list[list[int]], n_emojis: int) -> np.ndarray:
    """The log of how often the training tweets use each emoji (a tweet's emojis share one
    count; 0.1 for one never used), 0 for the most used: where the SQAM's bias starts."""
    counts = np.zeros(n_emojis)
    for g in tweet_gold:
        counts[g] += 1.0 / len(g)
    prior = np.log(counts + 0.1)
    return prior - prior.max()


def _fit(model: SQAM, train: Examples, tune: Examples, s: TrainSettings, feat, chars, verbose: bool) -> KeepBestEpoch:
    """Train with AdamW on a cosine schedule; the callbacks keep the best epoch on the tune
    rows and print the sample answers. Returns the best-epoch callback (its history)."""
    import keras

    batches = TrainingBatches(train, s.batch_size, s.ngram_dropout, s.seed)
    schedule = keras.optimizers.schedules.CosineDecay(s.learning_rate, s.epochs * len(batches), alpha=0.05)
    model.compile(
        optimizer=keras.optimizers.AdamW(
            schedule, weight_decay=s.weight_decay, use_ema=s.ema > 0, ema_momentum=s.ema or 0.99
        )
    )
    best = KeepBestEpoch(tune, verbose)
    callbacks = [best] + ([SampleAnswers(feat, chars)] if verbose else [])
    model.fit(batches, epochs=s.epochs, callbacks=callbacks, verbose=2 if verbose else 0)
    return best


def _save(out: Path, model: SQAM, word_q, word_scale, vocab: Vocabulary, chars: list[str]) -> None:
    """What the NumPy ranker reads: the question encoder, the answers, the bias, the words."""
    np.savez_compressed(out / QUESTION_FILE, **export_question_weights(model, word_q, word_scale))
    np.save(out / ANSWERS_FILE, np.asarray(model.encode_answers(), np.float32))
    np.save(out / BIAS_FILE, np.asarray(model.bias.numpy(), np.float32))
    vocab.save(out / VOCAB_FILE)
    (out / CHARS_FILE).write_text(json.dumps(chars, ensure_ascii=False), encoding="utf-8")


def _shipped_figures(out: Path, data_dir, tune_rows: EmojiRows, val: EmojiRows | None) -> dict[str, Any]:
    """The figures of what was written, read back through the NumPy ranker: the tune rows,
    the val side (none when every tweet trained) and TweetEval val among its 20 emojis."""
    ranker = TextRanker(out)
    ranker.heads = None
    figures: dict[str, Any] = {"twemoji_tune": _catalog_report(ranker, tune_rows)}
    if val is not None:  # trained on every tweet: no val side left to report
        figures["twemoji_val"] = _catalog_report(ranker, val)
    tv = load_tweeteval(data_dir, "val")
    figures["tweeteval_val_sqam"] = ranking_metrics(ranker.scores_in_chunks(tv.texts, tv.label_emojis), tv.labels)
    return figures


def train_sqam(
    data_dir: str | os.PathLike,
    out_dir: str | os.PathLike | None = None,
    settings: TrainSettings | None = None,
    codes_dir: str | os.PathLike | None = None,
    verbose: bool = True,
) -> dict[str, Any]:
    """Train the SQAM on the whole-catalog tweets and the emoji descriptions, keep its best
    epoch on the tune rows, write what the ranker reads and record it in the manifest."""
    import keras

    from models.minilm import MiniLM

    s = settings or TrainSettings()
    keras.utils.set_random_seed(s.seed)
    rng = np.random.default_rng(s.seed)
    out = artifacts_dir(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.time()

    encoder = MiniLM()  # fails early, with the install line, when the package is missing
    catalog = EmojiCatalog.load(data_dir)
    codes = _load_codes(artifacts_dir(codes_dir) if codes_dir else out, catalog)
    tok = TweetTokenizer()
    draw = draw_pool(data_dir, s.rows, s.seed, s.tune_fraction, s.train_share, catalog)
    tune_idx, train_idx = draw.tune, draw.rest
    if s.max_tweets:
        train_idx, tune_idx = train_idx[: s.max_tweets], tune_idx[: max(50, s.max_tweets // 8)]
    rows = _training_texts(data_dir, catalog, draw, train_idx, s, rng)

    vocab, word_q, word_scale = _word_vectors(rows.texts, s, encoder, tok, verbose)
    vectors = dequantize_rows(word_q, word_scale)  # trained on exactly what ships
    feats = answer_features(codes, description_vectors(catalog, encoder), s.model.use_semantic)
    feat = TextFeaturizer(vocab, tok)
    C = len(catalog)
    train = Examples(feat, rows.texts, rows.gold, rows.weight, C, rows.among)
    tune_rows = draw.take(tune_idx)
    tune = Examples(
        feat, tune_rows.texts, [[catalog.index_of(c) for c in g] for g in tune_rows.gold], np.ones(len(tune_idx)), C
    )
    model = SQAM(vectors, NGRAM_BUCKETS, feats, s.model, ngram_idf(train.N), prior=_usage_prior(rows.tweet_gold, C))
    best = _fit(model, train, tune, s, feat, catalog.chars, verbose)
    _save(out, model, word_q, word_scale, vocab, catalog.chars)

    assert best.best is not None
    info: dict[str, Any] = {
        "settings": {k: v for k, v in s.__dict__.items() if k != "model"},
        "model": s.model.to_dict(),
        "vocabulary_size": len(vocab.words),
        "train_examples": rows.sizes,
        "tune_rows": len(tune_idx),
        "history": best.history,
        "best_epoch": best.best[1],
        "train_seconds": round(time.time() - t_start, 1),
    }
    update_manifest(out, "sqam", info)
    # Report with the exported NumPy ranker: the figures are those of what ships.
    info.update(_shipped_figures(out, data_dir, tune_rows, draw.reported))
    update_manifest(out, "sqam", info)
    return info


def _catalog_report(ranker: TextRanker, rows: EmojiRows) -> dict[str, float]:
    pos = {c: i for i, c in enumerate(ranker.chars)}
    scores = ranker.scores_in_chunks(rows.texts, **SQAM_ALONE)
    return catalog_metrics(scores, [np.asarray([pos[c] for c in g]) for g in rows.gold])


def export_question_weights(model: SQAM, word_q: np.ndarray, word_scale: np.ndarray) -> dict[str, np.ndarray]:
    """Question encoder weights in the layout of :class:`models.ranker.NumpyQuestionEncoder`.

    Word vectors and the n-gram table ship as int8 rows with a float scale each (a quarter
    of float32; the word vectors were trained in that precision already)."""
    qt = model.question_tower
    w: dict[str, np.ndarray] = {}
    if model.cfg.use_words:
        w["word_table_q"], w["word_table_scale"] = word_q, word_scale
    if model.cfg.use_ngrams:
        q, scale = quantize_columns(qt.get_layer("ngram_embedding").get_weights()[0].T)
        w["ngram_table_q"], w["ngram_table_scale"] = q.T.copy(), scale
        w["ngram_idf"] = np.asarray(qt.get_layer("ngram_pool").get_weights()[0], np.float32)
    w["question_dense_w"], w["question_dense_b"] = qt.get_layer("question_dense").get_weights()
    for i in range(len(model.cfg.shared_dims)):
        w[f"shared_{i}_w"], w[f"shared_{i}_b"] = model.shared.get_layer(f"shared_dense_{i}").get_weights()
    return w
