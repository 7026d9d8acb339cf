"""`emojibot retrain`: fine-tune the current SQAM on people's feedback, then gate it.

:func:`retrain` reads the current version's folder, builds triplets from the store's
feedback export (``training.feedback``), mixes them with the whole-catalog tweets it was
first trained on (so that it does not forget what it knew), fine-tunes
:class:`models.sqam.ShippedSQAM` (the feedback through the popularity mix the bot ranks
by) and writes a complete new version into a staging folder (the files it does not
change are the base version's; the text heads are carried over and bound to the new
SQAM). :func:`gate_figures` and :func:`gate` decide whether it may replace the current
version: it must not lose more than ``tolerance`` of the whole-catalog MRR on the
`twemoji_tweets` rows its SQAM never trained on (the val side, or the tune rows of a
model trained on every tweet) or of TweetEval val macro-F1, nor more than
``RECALL_TOLERANCE`` of its macro-recall@5 (feedback on a few popular emojis can narrow
the ranking to them), and it must do better than the current version on the held-out
newest feedback.

Nothing here knows the bot: the caller passes the export and decides what to do with the
verdict (``bot/cli/retrain.py``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from models.artifacts import (
    ANSWERS_FILE,
    BIAS_FILE,
    CHARS_FILE,
    HEADS_FILE,
    QUESTION_FILE,
    VOCAB_FILE,
    read_cache,
    require,
    update_manifest,
    write_json_atomically,
)
from models.ranker import SQAM_ALONE, SUM_OF_TERMS, TextRanker
from models.text import MAX_NGRAMS, MAX_TOKENS, TextFeaturizer, Vocabulary
from training.feedback import Feedback, FeedbackExample, FeedbackSettings, build_feedback
from training.keras_data import callback_base, py_dataset_base
from training.metrics import catalog_metrics, ranking_metrics, rounded

Progress = Callable[[str], None]


class NothingToLearn(ValueError):
    """No stored message has a reaction to learn from."""


@dataclass
class RetrainSettings:
    epochs: int = 2
    learning_rate: float = 3e-3
    batch_size: int = 256
    feedback_weight: float = 1.0  # a feedback example's weight next to an original tweet's
    original_rows: int | None = None  # whole-catalog train tweets mixed in (None: all of them)
    unlikelihood: float = 1.0  # weight of pushing down unendorsed suggestions
    train_ngrams: bool = False  # fine-tune the n-gram table too (12.6M weights)
    gold_share: float = 0.0  # of an original tweet's target given to its own emojis
    through_mix: bool = True  # feedback learned through the popularity mix, as the bot ranks
    seed: int = 13
    feedback: FeedbackSettings = field(default_factory=FeedbackSettings)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Rows:
    """Featurised texts with their target distribution, explicit negatives and weight."""

    def __init__(
        self,
        feat: TextFeaturizer,
        positions: dict[str, int],
        examples: list[FeedbackExample],
        teacher: np.ndarray | None = None,
        offsets: np.ndarray | None = None,
    ):
        """``teacher``: dense targets of the last ``len(teacher)`` examples; ``offsets``: the
        ranker's fixed terms (names, catalog head) of the others, the feedback examples
        (the teacher's targets are the SQAM's own answers: no offsets there)."""
        b = feat.featurize([e.text for e in examples], pad_to=(MAX_TOKENS, MAX_NGRAMS))
        self.teacher = teacher if teacher is not None else np.zeros((0, len(positions)), np.float16)
        self.first_teacher = len(examples) - len(self.teacher)
        self.offsets = offsets if offsets is not None else np.zeros((self.first_teacher, len(positions)), np.float32)
        assert len(self.offsets) == self.first_teacher
        self.W, self.N = b.word_ids, b.ngram_ids
        self.targets = [{positions[k]: v for k, v in e.positives.items()} for e in examples]
        self.negatives = [[positions[k] for k in e.negatives] for e in examples]
        self.weight = np.asarray([e.weight for e in examples], np.float32)
        self.n = len(positions)

    def __len__(self) -> int:
        return len(self.weight)

    def batch(self, idx: np.ndarray):
        y = np.zeros((len(idx), self.n), np.float32)
        neg = np.zeros((len(idx), self.n), np.float32)
        off = np.zeros((len(idx), self.n), np.float32)
        ranked = (idx < self.first_teacher).astype(np.float32)  # feedback: learned as the bot ranks
        for r, i in enumerate(idx):
            if i >= self.first_teacher:
                y[r] = self.teacher[i - self.first_teacher]
                continue
            off[r] = self.offsets[i]
            t = self.targets[i]
            if t:
                total = sum(t.values())
                for c, v in t.items():
                    y[r, c] = v / total
            neg[r, self.negatives[i]] = 1.0
        return (self.W[idx], self.N[idx], off), (y, neg, ranked), self.weight[idx]


# Macro-recall@5 averages over the 400-odd emojis of the val side, many with one or two
# tweets: it moves more than MRR between versions that rank alike (a bootstrap over the
# val tweets gives a standard error of 0.007), so its tolerance is wider.
RECALL_TOLERANCE = 0.01


class FeedbackBatches(py_dataset_base()):  # type: ignore[misc]
    """Shuffled batches of feedback and original tweets, mixed."""

    def __init__(self, rows: _Rows, batch_size: int, seed: int):
        super().__init__()
        self.rows, self.batch_size = rows, batch_size
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(len(rows))

    def __len__(self) -> int:
        return int(np.ceil(len(self.rows) / self.batch_size))

    def __getitem__(self, i: int):
        return self.rows.batch(self.order[i * self.batch_size : (i + 1) * self.batch_size])

    def on_epoch_end(self) -> None:
        self.order = self.rng.permutation(len(self.rows))


class ReportProgress(callback_base()):  # type: ignore[misc]
    """Tells ``progress`` where training is, every ``every`` batches and at each epoch end."""

    def __init__(self, progress: Progress, epochs: int, batches: int, every: int = 20):
        super().__init__()
        self.progress, self.epochs, self.batches, self.every = progress, epochs, batches, every
        self.epoch = 0

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        self.epoch = epoch + 1

    def on_train_batch_end(self, batch: int, logs=None) -> None:
        if (batch + 1) % self.every == 0:
            done = ((self.epoch - 1) * self.batches + batch + 1) / (self.epochs * self.batches)
            self.progress(f"training: epoch {self.epoch}/{self.epochs}, {done:.0%}")

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        self.progress(f"training: epoch {epoch + 1}/{self.epochs} done, loss {float((logs or {}).get('loss', 0)):.3f}")


def _original_examples(data_dir, catalog, ranker: TextRanker, s: RetrainSettings, rng):
    """The whole-catalog train tweets, each with the current model's own answer as its
    target (its softmax over the catalog), blended with the emojis the tweet had
    (``gold_share``): learning without forgetting. Trained on their gold emojis alone, the
    model drifted from the epoch training had picked (whole-catalog val MRR −0.009 at a
    rate of 1e-4, measured); the current model's answers keep it where it was, except
    where feedback moves it. Returns (examples, (N, catalog) float16 targets)."""
    from training.data import shipped_pool

    train = shipped_pool(data_dir, ranker.folder, catalog).trained()  # never the rows the gate reads
    idx = np.arange(len(train.texts))
    if s.original_rows is not None and s.original_rows < len(idx):
        idx = np.sort(rng.choice(idx, s.original_rows, replace=False))
    texts = [train.texts[i] for i in idx]
    teacher = np.zeros((len(idx), len(ranker.chars)), np.float16)
    pos = ranker.index.positions
    for j in range(0, len(texts), 1024):
        # the SQAM's own answer
        logits = ranker.scores(texts[j : j + 1024], allow_empty=True, **SQAM_ALONE)
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p *= (1.0 - s.gold_share) / p.sum(axis=1, keepdims=True)
        for r, i in enumerate(idx[j : j + 1024]):
            for c in train.gold[i]:
                p[r, pos[c]] += s.gold_share / len(train.gold[i])
        teacher[j : j + len(p)] = p
    return [FeedbackExample(t, {}, [], 0.0, 1.0) for t in texts], teacher


def _fixed_terms(ranker: TextRanker, examples: list[FeedbackExample]) -> np.ndarray:
    """(N, catalog): what the ranker adds to the SQAM's score for each text (the emoji names,
    the catalog head and the sentence term), which a retrain does not change. Feedback is learned on the whole
    ranking: without them the SQAM learned 🍕 for food plans, and the catalog head's pull
    towards the tweets' emojis kept it out of the top 3 for some of them."""
    out = np.zeros((len(examples), len(ranker.chars)), np.float32)
    for i in range(0, len(examples), 1024):
        texts = [e.text for e in examples[i : i + 1024]]
        full = ranker.scores(texts, allow_empty=True, **SUM_OF_TERMS)  # the sum of the terms
        out[i : i + len(texts)] = full - ranker.scores(texts, allow_empty=True, **SQAM_ALONE)
    return out


def retrain(
    base: Path,
    staging: Path,
    export: dict[str, list[dict[str, Any]]],
    data_dir: str | os.PathLike,
    settings: RetrainSettings | None = None,
    progress: Progress = lambda _m: None,
    feedback: Feedback | None = None,
) -> dict[str, Any]:
    """Fine-tune ``base``'s SQAM into ``staging`` (a copy of ``base``: see
    ``models.artifacts.Registry.stage``); returns what was done, with the feedback split."""
    import keras

    from models.catalog import EmojiCatalog
    from models.heads import answers_digest, rebind_heads
    from models.sqam import ShippedSQAM

    s = settings or RetrainSettings()
    t0 = time.time()
    keras.utils.set_random_seed(s.seed)
    rng = np.random.default_rng(s.seed)
    require(base, QUESTION_FILE, ANSWERS_FILE, BIAS_FILE, VOCAB_FILE, CHARS_FILE)
    ranker = TextRanker(base)
    positions = ranker.index.positions
    progress("building triplets from the feedback")
    fb = feedback or build_feedback(export, lambda e: e in positions, s.feedback)
    if not any(e.positives for e in fb.train):
        raise NothingToLearn(
            f"no reaction to learn from yet: an emoji is learned once {s.feedback.min_people} different people "
            "(not the message's author) added it to messages in channels where learning is on"
        )
    t_triplets = time.time() - t0
    catalog = EmojiCatalog.load(data_dir)
    if catalog.chars != ranker.chars:
        raise ValueError("the data directory's catalog is not the one the current model ranks")
    feedback_rows = [FeedbackExample(e.text, e.positives, e.negatives, e.time, e.weight * s.feedback_weight)
                     for e in fb.train]  # fmt: skip
    progress("the current model answers the original tweets (what it must not forget)")
    original, teacher = _original_examples(data_dir, catalog, ranker, s, rng)
    progress(f"featurising {len(feedback_rows):,} feedback and {len(original):,} original examples")
    feat = TextFeaturizer(Vocabulary.load(base / VOCAB_FILE))
    rows = _Rows(feat, positions, feedback_rows + original, teacher, _fixed_terms(ranker, feedback_rows))

    with np.load(base / QUESTION_FILE) as z:
        weights = {k: z[k] for k in z.files}
    mix = None
    if s.through_mix and ranker.prior is not None and ranker.prior.weight:
        mix = (ranker.prior.popularity, ranker.prior.temperature, ranker.prior.weight, ranker.prior.sureness)
    model = ShippedSQAM(
        weights,
        ranker.answers,
        ranker.bias,
        ranker.scale,
        unlikelihood=s.unlikelihood,
        train_ngrams=s.train_ngrams,
        mix=mix,
    )
    batches = FeedbackBatches(rows, s.batch_size, s.seed)
    model.compile(optimizer=keras.optimizers.Adam(s.learning_rate))
    model.fit(batches, epochs=s.epochs, callbacks=[ReportProgress(progress, s.epochs, len(batches))], verbose=0)

    progress("writing the new version")
    w, answers, bias = model.export()
    for name in (QUESTION_FILE, ANSWERS_FILE, BIAS_FILE, HEADS_FILE):
        (staging / name).unlink(missing_ok=True)  # hard links to the base: never write through them
    np.savez_compressed(staging / QUESTION_FILE, **w)
    np.save(staging / ANSWERS_FILE, answers)
    np.save(staging / BIAS_FILE, bias)
    if (base / HEADS_FILE).exists():
        rebind_heads(base / HEADS_FILE, staging / HEADS_FILE, answers_digest(staging / ANSWERS_FILE))
    info = {
        "base_version": ranker.version,
        "settings": s.to_dict(),
        "feedback": fb.stats,
        "examples": {"feedback": len(feedback_rows), "original": len(original)},
        "triplet_seconds": round(t_triplets, 2),
        "train_seconds": round(time.time() - t0, 1),
    }
    manifest = update_manifest(staging, "retrain", info)
    info["version"] = manifest["version"]
    return info


def feedback_metrics(ranker: TextRanker, examples: list[FeedbackExample]) -> dict[str, float] | None:
    """Whole-catalog ranking of held-out feedback messages: the emojis people added are gold."""
    rows = [e for e in examples if e.positives]
    if not rows:
        return None
    pos = ranker.index.positions
    scores = ranker.scores_in_chunks([e.text for e in rows])
    return catalog_metrics(scores, [np.asarray([pos[c] for c in e.positives]) for e in rows])


def validation_figures(folder: Path, data_dir, cache: Path | None = None) -> dict[str, Any]:
    """The gate's validation figures of a version: whole-catalog ranking of the
    `twemoji_tweets` rows its SQAM never trained on (the val side, or the tune rows of a
    model trained on every tweet) and TweetEval val macro-F1 (with the heads, as the bot
    ranks the 20 emojis). Cached per version in ``cache`` (a version's files never change)."""
    from models.catalog import EmojiCatalog
    from training.data import load_tweeteval, shipped_pool
    from training.minilm import remember_cached

    if cache is not None and (kept := read_cache(cache)) is not None:
        return kept
    ranker = TextRanker(folder)
    held_out, val = shipped_pool(data_dir, folder, EmojiCatalog.load(data_dir)).held_out()
    _, texts, gold = val.in_catalog(ranker.index.positions)
    whole = catalog_metrics(ranker.scores_in_chunks(texts), gold)
    tv = load_tweeteval(data_dir, "val")
    remember_cached(ranker, tv.texts)
    tv_scores = ranker.scores_in_chunks(tv.texts, tv.label_emojis)
    te = ranking_metrics(tv_scores, tv.labels)
    out = {
        "version": ranker.version,
        "catalog_val": rounded(whole),
        "catalog_val_rows": held_out,
        "tweeteval_val_macro_f1": round(float(te["macro_f1"]), 4),
        "heads": ranker.heads_note,
    }
    if cache is not None:  # written whole or not at all: a half-written cache is measured again
        cache.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomically(cache, out)
    return out


def gate(
    current: dict[str, Any],
    candidate: dict[str, Any],
    tolerance: float = 0.005,
    recall_tolerance: float = RECALL_TOLERANCE,
) -> tuple[bool, list[str]]:
    """Promote only if the candidate keeps the validation figures (MRR and macro-F1 within
    ``tolerance``, macro-recall@5 within ``recall_tolerance``) and ranks the held-out
    feedback better. Returns (promote, the reasons, each a sentence)."""
    reasons, ok = [], True
    rows = current.get("catalog_val_rows", "val side")
    for name, get, tol in (
        (f"whole-catalog MRR ({rows})", lambda f: f["catalog_val"]["mrr"], tolerance),
        (f"whole-catalog macro-recall@5 ({rows})", lambda f: f["catalog_val"]["macro_recall_at_5"], recall_tolerance),
        ("TweetEval val macro-F1", lambda f: f["tweeteval_val_macro_f1"], tolerance),
    ):
        a, b = get(current), get(candidate)
        if b < a - tol:
            ok = False
            reasons.append(f"{name} fell from {a:.4f} to {b:.4f} (more than {tol})")
        else:
            reasons.append(f"{name} {a:.4f} → {b:.4f} (within {tol})")
    fa, fb = current.get("feedback"), candidate.get("feedback")
    if fa is None or fb is None:
        ok = False
        reasons.append("no held-out feedback to show that it learned anything")
    elif fb["mrr"] <= fa["mrr"]:
        ok = False
        reasons.append(f"held-out feedback MRR did not improve ({fa['mrr']:.4f} → {fb['mrr']:.4f})")
    else:
        reasons.append(f"held-out feedback MRR {fa['mrr']:.4f} → {fb['mrr']:.4f}")
    return ok, reasons
