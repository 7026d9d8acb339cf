"""`emojibot train sentence`: distil the whole-sentence encoder into the sentence term
(``models.sentence``).

After `train sqam` (the student reads the SQAM's inputs) and before `train catalog-head`
(which chooses the term's weight together with the popularity mix). Three steps:

1. **Embed.** all-MiniLM-L6-v2 (``training.minilm``, NumPy) embeds the SQAM's training
   tweets (the tune rows left out: they choose the weight) and, up to ``max_texts`` in all,
   a seeded sample of TweetEval's train tweets. This is
   most of the time (about 100 texts a second on two cores), so the vectors are kept in a
   cache outside the artifacts (``training.minilm.encode_cached``) for the next run.
2. **Teach.** A multinomial logistic regression over the training tweets' sentence vectors,
   a tweet's first emoji its label: the teacher, ``p(e | sentence)``; with the sampled
   TweetEval tweets and their own emoji too, at ``tweeteval_labels`` each, but those on
   which `train catalog-head` chooses the weights (``training.data.choice_sample``).
3. **Distil.** The student (``Student``: the texts' n-grams through a small table of its
   own, next to the SQAM's pooled n-gram vector and word mean, one dense layer, a softmax)
   learns the teacher's probabilities on every embedded text by KL divergence; a held-out
   twentieth of the texts picks the epoch.

Written as keras-io writes models: ``Student`` is a ``keras.Model`` with its own
``train_step`` and metric trackers, batches come from a ``keras.utils.PyDataset``, and
callbacks keep the best epoch and print what the student reads in a few everyday messages.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.artifacts import SENTENCE_FILE, artifacts_dir, update_manifest
from models.ranker import TextRanker
from models.sentence import FOLD, SentenceTerm, inputs_digest
from models.text import MAX_NGRAMS, MAX_TOKENS
from training.data import CHOICE_TEXTS
from training.keras_data import callback_base, model_base, py_dataset_base

SAMPLE_MESSAGES = (
    "feeling really sad about the news today",
    "congrats on the new job!!",
    "thanks for the help!",
    "lakers lost again tonight",
)


@dataclass
class SentenceSettings:
    c: float = 3.0  # the teacher's inverse regularisation
    # Texts the encoder embeds at most: the training tweets first, then TweetEval train
    # tweets up to it. 40,000 keep `train sentence` near 7 minutes on a 2-core machine
    # (45,000 TweetEval tweets, 63,484 texts in all, scored a little better: README).
    max_texts: int = 40_000
    dim: int = 16  # the student's own table: FOLD rows of this many columns
    hidden: int = 128
    epochs: int = 10
    batch_size: int = 256
    learning_rate: float = 2e-3
    check_share: float = 0.05  # of the texts, held out to pick the epoch
    seed: int = 0
    # TweetEval train tweets the teacher also learns from, with their own emoji, at this
    # weight next to a whole-catalog tweet (0: their texts only, unlabelled, for the
    # student). The tweets on which `train catalog-head` chooses the weights are left out.
    # At 1 the term cost the tune rows 0.007 of top-5 and MRR; at 0.3 0.002–0.003, and it
    # reads TweetEval's tweets far better (docs/TEXT_RANKING.md, "TweetEval's own emojis").
    tweeteval_labels: float = 0.3
    choice_texts: int = CHOICE_TEXTS  # the draw `train catalog-head` chooses on (its prior_texts)
    max_tweets: int | None = None  # for quick runs and tests
    cache: bool = True  # keep the sentence vectors for the next run (training.minilm.cache_dir)


class Student(model_base()):  # type: ignore[misc]
    """The student: ``(folded n-gram ids, their weights, the SQAM's inputs)`` → logits over
    the teacher's emojis. ``models.sentence.SentenceTerm`` is its NumPy forward pass."""

    def __init__(self, n_emojis: int, dim: int = 16, hidden: int = 128, **kwargs):
        import keras

        super().__init__(**kwargs)
        self.table = keras.layers.Embedding(FOLD, dim, name="table")
        self.hidden = keras.layers.Dense(hidden, activation="relu", name="hidden")
        self.out = keras.layers.Dense(n_emojis, name="out")
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.kl_tracker = keras.metrics.Mean(name="kl")
        self.agreement = keras.metrics.Mean(name="agreement")  # the teacher's first emoji is the student's

    @property
    def metrics(self):
        return [self.loss_tracker, self.kl_tracker, self.agreement]

    def call(self, inputs, training: bool = False):
        from keras import ops

        ids, weights, sqam = inputs
        own = ops.sum(self.table(ids) * ops.expand_dims(weights, -1), axis=1)
        return self.out(self.hidden(ops.concatenate([own, sqam], axis=-1)))

    def _track(self, teacher, logits):
        from keras import ops

        logq = ops.log_softmax(logits, axis=-1)
        cross = -ops.mean(ops.sum(teacher * logq, axis=-1))
        entropy = -ops.mean(ops.sum(teacher * ops.log(ops.maximum(teacher, 1e-12)), axis=-1))
        agree = ops.mean(ops.cast(ops.argmax(teacher, -1) == ops.argmax(logits, -1), "float32"))
        self.loss_tracker.update_state(cross)
        self.kl_tracker.update_state(cross - entropy)
        self.agreement.update_state(agree)
        return cross

    def train_step(self, data):
        import tensorflow as tf

        inputs, teacher = data
        with tf.GradientTape() as tape:
            loss = self._track(teacher, self(inputs, training=True))  # KL to the teacher, up to its entropy
        grads = tape.gradient(loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights, strict=True))
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, data):
        inputs, teacher = data
        self._track(teacher, self(inputs, training=False))
        return {m.name: m.result() for m in self.metrics}

    def export(self) -> dict[str, np.ndarray]:
        """The float weights in ``models.sentence``'s layout."""
        hw, hb = (np.asarray(v) for v in self.hidden.get_weights())
        ow, ob = (np.asarray(v) for v in self.out.get_weights())
        table = np.asarray(self.table.get_weights()[0])
        return {"table": table, "hidden_w": hw, "hidden_b": hb, "out_w": ow, "out_b": ob}


@dataclass
class StudentInputs:
    """The student's inputs for a list of texts: folded n-gram ids (padded with 0), their
    idf weights as the SQAM's n-gram rows give them (each text's L2-normalised), and the
    SQAM's pooled n-gram vector and word mean."""

    ids: np.ndarray
    weights: np.ndarray
    sqam: np.ndarray

    @classmethod
    def of(cls, ranker: TextRanker, texts: list[str], chunk: int = 4096) -> StudentInputs:
        enc = ranker.encoder
        assert enc.ngram_idf is not None
        ids, weights, sqam = [], [], []
        for i in range(0, len(texts), chunk):
            batch = ranker.featurizer.featurize(texts[i : i + chunk], pad_to=(MAX_TOKENS, MAX_NGRAMS))
            n = batch.ngram_ids
            w = np.where(n != 0, enc.ngram_idf[n], 0.0).astype(np.float32)
            w /= np.sqrt(np.maximum((w * w).sum(axis=1, keepdims=True), 1e-12))
            ids.append((n % FOLD).astype(np.int32))
            weights.append(w)
            sqam.append(enc.inputs(batch))
        return cls(np.concatenate(ids), np.concatenate(weights), np.concatenate(sqam).astype(np.float32))

    def take(self, idx) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.ids[idx], self.weights[idx], self.sqam[idx]


class TeacherBatches(py_dataset_base()):  # type: ignore[misc]
    """Shuffled batches (student inputs, the teacher's probabilities)."""

    def __init__(self, x: StudentInputs, teacher: np.ndarray, idx: np.ndarray, batch_size: int, seed: int):
        super().__init__()
        self.x, self.teacher, self.idx, self.batch_size = x, teacher, idx, batch_size
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(idx)

    def __len__(self) -> int:
        return int(np.ceil(len(self.idx) / self.batch_size))

    def __getitem__(self, i: int):
        b = self.order[i * self.batch_size : (i + 1) * self.batch_size]
        return self.x.take(b), self.teacher[b]

    def on_epoch_end(self) -> None:
        self.order = self.rng.permutation(self.idx)


def student_log_probs(model: Student, x: StudentInputs, idx: np.ndarray, batch: int = 2048) -> np.ndarray:
    out = []
    for s in range(0, len(idx), batch):
        z = np.asarray(model(x.take(idx[s : s + batch]), training=False), np.float64)
        z -= z.max(axis=1, keepdims=True)
        out.append(z - np.log(np.exp(z).sum(axis=1, keepdims=True)))
    return np.concatenate(out)


def kl_divergence(teacher: np.ndarray, log_q: np.ndarray) -> float:
    """Mean KL(teacher ‖ student) over rows."""
    p = teacher.astype(np.float64)
    return float(np.mean(np.sum(p * (np.log(np.maximum(p, 1e-12)) - log_q), axis=1)))


class KeepBestStudent(callback_base()):  # type: ignore[misc]
    """After each epoch, the KL divergence to the teacher on the held-out texts; at the end
    of training the model holds the weights of the epoch where it was smallest."""

    def __init__(self, x: StudentInputs, teacher: np.ndarray, check: np.ndarray, verbose: bool = True):
        super().__init__()
        self.x, self.teacher, self.check, self.verbose = x, teacher, check, verbose
        self.best: tuple[float, int, list[np.ndarray]] | None = None
        self.history: list[dict[str, Any]] = []

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        log_q = student_log_probs(self.model, self.x, self.check)
        kl = kl_divergence(self.teacher[self.check], log_q)
        agree = float(np.mean(np.argmax(log_q, 1) == np.argmax(self.teacher[self.check], 1)))
        logs = logs or {}
        self.history.append(
            {"epoch": epoch + 1, "train_kl": round(float(logs.get("kl", np.nan)), 4), "check_kl": round(kl, 4),
             "check_agreement": round(agree, 4)}
        )  # fmt: skip
        if self.best is None or kl < self.best[0]:
            self.best = (kl, epoch + 1, [v.numpy() for v in self.model.trainable_variables])
        if self.verbose:
            print(f"epoch {epoch + 1}: held-out KL {kl:.4f}, agreement with the teacher {agree:.3f}", file=sys.stderr)

    def on_train_end(self, logs=None) -> None:
        assert self.best is not None
        for v, value in zip(self.model.trainable_variables, self.best[2], strict=True):
            v.assign(value)


class SampleReadings(callback_base()):  # type: ignore[misc]
    """Prints, after each epoch, the emojis the student finds most likely for a few
    everyday messages: what the term reads in them."""

    def __init__(self, x: StudentInputs, chars: list[str], messages=SAMPLE_MESSAGES):
        super().__init__()
        self.x, self.chars, self.messages = x, chars, messages

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        z = np.asarray(self.model(self.x.take(np.arange(len(self.messages))), training=False))
        for text, row in zip(self.messages, z, strict=True):
            print(f"  {text[:48]:<48} {' '.join(self.chars[i] for i in np.argsort(-row)[:5])}", file=sys.stderr)


def _texts(data_dir, out: Path, catalog, ranker: TextRanker, s: SentenceSettings):
    """(training tweets, their first emoji's catalog row, TweetEval texts, the catalog row
    of their emoji where the teacher may read it, else −1): what is embedded."""
    from training.data import choice_sample, load_tweeteval, shipped_pool

    draw = shipped_pool(data_dir, out, catalog)
    rest = draw.rest[: s.max_tweets] if s.max_tweets else draw.rest
    rest = rest[: s.max_texts]
    pos = ranker.index.positions
    tweets = [draw.pool.texts[i] for i in rest]
    labels = np.asarray([pos[draw.pool.gold[i][0]] for i in rest], np.int64)
    room = max(0, s.max_texts - len(tweets))
    te = load_tweeteval(data_dir, "train")
    if s.max_tweets:
        room = min(room, s.max_tweets)
    pick = np.sort(np.random.default_rng(s.seed).permutation(len(te.texts))[:room])
    te_labels = te.label_rows(catalog, pos)[te.labels[pick]]
    te_labels[np.isin(pick, choice_sample(len(te.texts), s.choice_texts))] = -1
    return tweets, labels, [te.texts[i] for i in pick], te_labels


def _teacher(vectors: np.ndarray, labels: np.ndarray, weights: np.ndarray, c: float, say):
    """The logistic regression over sentence vectors: (model, classes as catalog rows, fit seconds)."""
    from sklearn.linear_model import LogisticRegression

    say(f"sentence: teacher, logistic regression (C {c:g}) over {len(labels):,} tweets")
    t0 = time.time()
    lr = LogisticRegression(C=c, max_iter=300).fit(vectors, labels, sample_weight=weights)
    return lr, np.asarray(lr.classes_, np.int64), time.time() - t0


def _distil(x: StudentInputs, teacher: np.ndarray, chars: list[str], s: SentenceSettings, n_samples: int, verbose):
    """Train the student on the teacher's probabilities; (student, best-epoch callback)."""
    import keras

    keras.utils.set_random_seed(s.seed)
    n = len(teacher)
    order = np.random.default_rng(s.seed + 1).permutation(np.arange(n_samples, n))
    n_check = max(1, int(len(order) * s.check_share))
    check, train = np.sort(order[:n_check]), order[n_check:]
    model = Student(len(chars), s.dim, s.hidden)
    model.compile(optimizer=keras.optimizers.Adam(s.learning_rate))
    best = KeepBestStudent(x, teacher, check, verbose)
    callbacks = [best] + ([SampleReadings(x, chars)] if verbose else [])
    model.fit(TeacherBatches(x, teacher, train, s.batch_size, s.seed), epochs=s.epochs, callbacks=callbacks,
              verbose=2 if verbose else 0)  # fmt: skip
    return model, best, len(train), n_check


def train_sentence(
    data_dir: str | os.PathLike,
    out_dir: str | os.PathLike | None = None,
    settings: SentenceSettings | None = None,
    verbose: bool = True,
) -> dict[str, Any]:
    """Embed, teach and distil (module docstring); writes the term with weight 0 when no
    term was there (`train catalog-head` chooses it), else with the weight it had."""
    from training.catalog_head import ranker_over_ngrams
    from training.minilm import SENTENCE_CACHE, cache_dir, encode_cached

    s = settings or SentenceSettings()
    out = artifacts_dir(out_dir)
    t_start = time.time()
    say = (lambda msg: print(msg, file=sys.stderr)) if verbose else (lambda msg: None)
    ranker, catalog = ranker_over_ngrams(data_dir, out, "the student")

    tweets, labels, others, other_labels = _texts(data_dir, out, catalog, ranker, s)
    texts = tweets + others
    cache = cache_dir() / SENTENCE_CACHE if s.cache else None
    say(f"sentence: embedding {len(tweets):,} training tweets and {len(others):,} TweetEval tweets with MiniLM")
    t0 = time.time()
    vectors, encoded = encode_cached(texts, cache, progress=verbose)
    embed_seconds = time.time() - t0
    reused = f", the rest repeated or from {cache}" if cache is not None else ", the rest repeated"
    say(f"sentence: {encoded:,} distinct texts encoded in {embed_seconds:.0f} s{reused}")

    rows = np.arange(len(tweets))
    weights = np.ones(len(tweets))
    if s.tweeteval_labels:  # TweetEval tweets with their own emoji, the choosing ones left out
        labelled = np.flatnonzero(other_labels >= 0)
        rows = np.concatenate([rows, len(tweets) + labelled])
        labels = np.concatenate([labels, other_labels[labelled]])
        weights = np.concatenate([weights, np.full(len(labelled), s.tweeteval_labels)])
    lr, classes, teach_seconds = _teacher(vectors[rows], labels, weights, s.c, say)
    teacher = lr.predict_proba(vectors).astype(np.float32)
    counts = np.bincount(np.searchsorted(classes, labels), weights, minlength=len(classes))
    log_share = np.log(counts / counts.sum()).astype(np.float32)
    chars = [ranker.chars[int(c)] for c in classes]

    say(f"sentence: the student learns the teacher's probabilities over {len(classes)} emojis on {len(texts):,} texts")
    x = StudentInputs.of(ranker, list(SAMPLE_MESSAGES) + texts)
    teacher = np.concatenate([np.zeros((len(SAMPLE_MESSAGES), len(classes)), np.float32), teacher])
    t0 = time.time()
    model, best, n_train, n_check = _distil(x, teacher, chars, s, len(SAMPLE_MESSAGES), verbose)
    distil_seconds = time.time() - t0
    assert best.best is not None

    old_weight = SentenceTerm.load(out / SENTENCE_FILE).weight if (out / SENTENCE_FILE).exists() else 0.0
    term = SentenceTerm.from_float(chars, model.export(), log_share, old_weight, inputs_digest(ranker.encoder))
    (out / SENTENCE_FILE).unlink(missing_ok=True)
    term.save(out / SENTENCE_FILE)
    info: dict[str, Any] = {
        "settings": asdict(s),
        "emojis": len(chars),
        "training_tweets": len(tweets),
        "tweeteval_texts": len(others),
        "tweeteval_labelled": int(np.sum(other_labels >= 0)) if s.tweeteval_labels else 0,
        "encoded_now": encoded,
        "embed_seconds": round(embed_seconds, 1),
        "teacher": {"c": s.c, "fit_seconds": round(teach_seconds, 1), "iterations": int(np.max(lr.n_iter_))},
        "student": {
            "train_texts": n_train,
            "check_texts": n_check,
            "history": best.history,
            "best_epoch": best.best[1],
            "check_kl": round(best.best[0], 4),
            "fit_seconds": round(distil_seconds, 1),
        },
        "weight": old_weight,
        "train_seconds": round(time.time() - t_start, 1),
    }
    update_manifest(out, "sentence", info)
    if not old_weight:
        say("sentence: written with weight 0; `emojibot train catalog-head` chooses its weight")
    return info
