"""Text → emoji ranking from the shipped artifacts, in NumPy.

The Keras SQAM is what trains; at inference only the question tower runs, per message,
and every catalog emoji's answer vector and bias are precomputed at training time. The
question tower is a bag of hashed n-grams and a mean of static word vectors under a few
dense layers, so it runs here in NumPy: no TensorFlow import on the hot path, a cold start
of a fraction of a second, and a few hundred MB less memory. ``tests/unit/test_sqam.py``
checks it against the Keras model.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from models.artifacts import (
    ANSWERS_FILE,
    BIAS_FILE,
    CATALOG_HEAD_FILE,
    CHARS_FILE,
    COMPLAINT_FILE,
    HEADS_FILE,
    MEANINGS_FILE,
    NAME_SLOT_FILE,
    NAMES_FILE,
    PRIOR_FILE,
    QUESTION_FILE,
    SENTENCE_FILE,
    VOCAB_FILE,
    ArtifactError,
    artifacts_dir,
    read_file,
    read_manifest,
    require,
)
from models.complaint import THRESHOLD as TONE_THRESHOLD
from models.heads import TextHeads, answers_digest
from models.text import TextBatch, TextFeaturizer, Vocabulary, mean_word_vectors

if TYPE_CHECKING:
    from models.names import NameHits


class EmptyTextError(ValueError):
    """Raised for texts with nothing to rank (empty or whitespace only)."""


def dequantize_rows(q: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """A table shipped as int8 rows with one scale each (``quantize_columns`` of its
    transpose) back in float32."""
    return q.astype(np.float32) * scale[:, None]


class NumpyQuestionEncoder:
    """Forward pass of the SQAM question encoder (question tower + shared stack)."""

    def __init__(self, weights: dict[str, np.ndarray]):
        w = {k: np.asarray(v) for k, v in weights.items()}
        # the shipped inputs of the tower, as stored (what models.sentence.inputs_digest reads)
        self.raw = {k: w[k] for k in ("ngram_table_q", "ngram_idf", "word_table_q") if k in w}
        self.word_vectors = dequantize_rows(w["word_table_q"], w["word_table_scale"]) if "word_table_q" in w else None
        self.ngram_table = dequantize_rows(w["ngram_table_q"], w["ngram_table_scale"]) if "ngram_table_q" in w else None
        self.ngram_idf = w["ngram_idf"].astype(np.float32) if self.ngram_table is not None else None
        f = lambda k: w[k].astype(np.float32)  # noqa: E731
        self.question_dense = (f("question_dense_w"), f("question_dense_b"))
        n_shared = sum(1 for k in w if k.startswith("shared_") and k.endswith("_w"))
        self.shared = [(f(f"shared_{i}_w"), f(f"shared_{i}_b")) for i in range(n_shared)]

    def inputs(self, batch: TextBatch, ngram_rows=None) -> np.ndarray:
        """(B, n-gram dim + word dim): the tower's input, the texts' n-gram rows pooled
        through the n-gram table next to the mean of their word vectors (``ngram_rows``:
        the batch's :meth:`ngram_rows`, when the caller has them already)."""
        parts = []
        if self.ngram_table is not None:
            rows = self.ngram_rows(batch.ngram_ids, canonical=False) if ngram_rows is None else ngram_rows
            parts.append(np.asarray(rows @ self.ngram_table, dtype=np.float32))
        if self.word_vectors is not None:
            parts.append(mean_word_vectors(self.word_vectors, batch.word_ids))
        return np.concatenate(parts, axis=-1) if len(parts) > 1 else parts[0]

    def tower(self, x: np.ndarray) -> np.ndarray:
        """(B, D) question vectors, L2-normalised, of the tower's inputs (:meth:`inputs`)."""
        for wt, b in [self.question_dense, *self.shared]:
            x = x @ wt  # a new array: the caller's inputs are left as they are
            x += b
            np.tanh(x, out=x)  # in place: these layers allocate nothing more
        x /= np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-8)
        return x

    def encode(self, batch: TextBatch, ngram_rows=None) -> np.ndarray:
        """(B, D) question vectors, L2-normalised (``ngram_rows`` as for :meth:`inputs`)."""
        return self.tower(self.inputs(batch, ngram_rows))

    def ngram_rows(self, ids: np.ndarray, canonical: bool = True):
        """(B × buckets) sparse rows: each text's n-grams weighted by idf, L2-normalised.
        The question tower pools the n-gram table with them (one sparse product); the
        catalog head (``models.catalog_head``) is linear over them. ``canonical=False``
        leaves a text's repeated n-grams as separate entries in the order of its ids: the
        same matrix for every product (the ranking's use), without the sort that summing
        them costs (a twentieth of ranking a batch); training hands canonical rows to
        scikit-learn."""
        from scipy.sparse import csr_matrix

        assert self.ngram_idf is not None
        nz = ids != 0
        counts = nz.sum(axis=1)
        rows = np.repeat(np.arange(ids.shape[0]), counts)
        w = np.where(nz, self.ngram_idf[ids], 0.0)
        norm = np.sqrt(np.maximum((w * w).sum(axis=1), 1e-12))
        data = (w[nz] / norm[rows]).astype(np.float32)
        indptr = np.concatenate([[0], np.cumsum(counts)])
        # built as CSR directly, in the row-major order of the ids (what the COO route gave)
        m = csr_matrix((data, ids[nz], indptr), shape=(ids.shape[0], len(self.ngram_idf)))
        if canonical:
            m.sum_duplicates()
        return m


def top_k(s: np.ndarray, k: int, block: int = 16) -> np.ndarray:
    """(B, k) column indices of each row's k largest values, unordered. Over the whole
    catalog it cuts the columns into ``block`` strided slices, takes the elementwise
    maximum of the slices (column j of it is the best of columns j, j + n/block, …), picks
    the k best of those maxima (their columns hold the k largest values) and then the k
    best of those k · block columns: a quarter of the time of one argpartition over every
    column (the maximum over strided slices is one vectorised pass; over runs of 16
    adjacent columns it cost four times as much)."""
    b, n = s.shape
    if n <= 8 * k * block:
        return np.argpartition(s, n - k, axis=1)[:, n - k :]
    pad = (-n) % block
    if pad:
        s = np.concatenate([s, np.full((b, pad), -np.inf, s.dtype)], axis=1)
    width = s.shape[1] // block
    maxima = s.reshape(b, block, width).max(axis=1)
    best_of = np.argpartition(maxima, width - k, axis=1)[:, -k:]
    cand = (best_of[:, :, None] + np.arange(block) * width).reshape(b, -1)
    best = np.argpartition(np.take_along_axis(s, cand, axis=1), cand.shape[1] - k, axis=1)[:, -k:]
    return np.take_along_axis(cand, best, axis=1)


def _check_texts(texts: Sequence[str], allow_empty: bool) -> None:
    for t in texts:
        if not isinstance(t, str):
            raise EmptyTextError(f"text must be a string, not {type(t).__name__}")
        if not allow_empty and not t.strip():
            raise EmptyTextError("text is empty: give a message to find emojis for")


@dataclass
class Ranked:
    """One emoji of a ranking: ``score`` orders it (the fit scaled, plus how often people
    use the emoji, plus its name when the text says it, or the heads among candidates);
    ``fit`` is the cosine of text and
    emoji alone, in [-1, 1]: how well the emoji fits this message, whatever its popularity
    (what the bot's auto-react threshold reads)."""

    emoji: str
    score: float
    fit: float = 0.0
    # over the whole catalog, the share of ``score`` that the popularity mix gives the emoji
    # (how often people use it) rather than the message (models.prior); 0 among candidates
    # (for an emoji the name slot placed, a share of the score the slot gave it)
    popular: float = 0.0


@dataclass(frozen=True)
class Terms:
    """The parts of whole-catalog ranking, each on or off (all on but ``heads_on_catalog``:
    what the bot ranks with). :meth:`TextRanker.scores` and ``evaluate emojis`` take them as
    keywords (``names=False``, …); an unknown one is a TypeError.

    - ``names``: the emoji names the text says (off: the name slot and the meaning match too);
    - ``catalog_head``: the linear n-gram model over the catalog;
    - ``sentence``: the sentence term, a whole-sentence encoder distilled (models.sentence);
    - ``prior``: the popularity mix (off: the sum of the terms);
    - ``name_slot``: a fifth place for an emoji the text names;
    - ``meanings``: the meaning match, words near an emoji's names in meaning;
    - ``grave``, ``complaint``, ``opposite``: the guards, :mod:`models.grave`,
      :mod:`models.complaint` and the names' opposites (:func:`models.names.opposite_pairs`:
      no 👎 for "great job 👍"), which hold emojis back at the very end, where the bot chooses;
    - ``heads_on_catalog``: the TweetEval and airline heads over the whole catalog too (an
      ablation: measured to cost whole-catalog ranking, the bot never does it).

    Among given candidates only the SQAM and the heads rank; the parts above are for the
    whole catalog."""

    names: bool = True
    catalog_head: bool = True
    sentence: bool = True
    prior: bool = True
    name_slot: bool = True
    meanings: bool = True
    grave: bool = True
    complaint: bool = True
    opposite: bool = True
    heads_on_catalog: bool = False

    def changed(self) -> list[str]:
        """The parts set otherwise than the bot ranks, in field order."""
        return [f.name for f in fields(self) if getattr(self, f.name) != f.default]


# What training fits on or imitates: the ranking's terms without the guards, ...
NO_GUARDS = {"grave": False, "complaint": False, "opposite": False}
# ... their sum, before the popularity mix and the name slot turn it into the ranking ...
SUM_OF_TERMS = {"prior": False, "name_slot": False, **NO_GUARDS}
# ... and the SQAM alone (what a retrain imitates and the names and the head are fitted next to).
SQAM_ALONE = {"names": False, "catalog_head": False, "sentence": False, "prior": False, **NO_GUARDS}


@dataclass(frozen=True)
class Explained:
    """Why one emoji stands where it does for a text (:meth:`TextRanker.explain`): its
    probability and fit as the ranking gives them, and the terms whose sum the popularity
    mix turns into that probability (``parts``: ``sqam`` is ``scale · fit + bias``; the
    others are what the names, the meaning match, the catalog head and the sentence term
    add, 0 where the model has no such part)."""

    emoji: str
    score: float
    fit: float
    parts: dict[str, float]
    # the probability's two halves: the terms' softmax and the popularity (models.prior)
    from_message: float
    from_popularity: float
    by_name_slot: bool = False  # its place is the name slot's (models.names.give_slot)
    held_back: str | None = None  # "grave", "complaint" or "opposite": the guard that moved it below the rest


@dataclass(frozen=True)
class Explanation:
    """The ranking of one text with its parts: the top ``k`` as ranked, then the emojis a
    guard moved out of that top ``k``; the message's tone and which guards applied."""

    text: str
    tone: float
    grave: bool
    complaint: bool
    emojis: list[Explained]
    complaint_model: float | None = None  # the complaint model's probability (None: no model)
    tone_threshold: float = TONE_THRESHOLD  # a tone at or below it reads as a complaint
    complaint_cutoff: float | None = None  # the model's probability from which it does (None: no model)


# The additive parts of whole-catalog scores, each with the terms that turn it off (the
# names' switch also turns off the meaning match, so the names are measured with it off).
_PARTS = (
    ("names", {"names": False}, {"meanings": False}),
    ("meanings", {"meanings": False}, {}),
    ("catalog_head", {"catalog_head": False}, {}),
    ("sentence", {"sentence": False}, {}),
)


def _question_encoder(path: Path) -> NumpyQuestionEncoder:
    with np.load(path) as z:
        return NumpyQuestionEncoder(dict(z))


def _read_threshold(path: Path) -> float:
    return json.loads(path.read_text(encoding="utf-8"))["threshold"]


class TextRanker:
    """Loads the shipped artifacts once and ranks texts against the catalog (or a subset)."""

    def __init__(self, folder: str | os.PathLike | None = None):
        self.folder = Path(artifacts_dir(folder))
        require(self.folder, QUESTION_FILE, ANSWERS_FILE, BIAS_FILE, VOCAB_FILE, CHARS_FILE)
        self.manifest = read_manifest(self.folder)
        self.version = str(self.manifest.get("version", "unversioned"))
        self.encoder = read_file(self.folder / QUESTION_FILE, _question_encoder)
        self.answers = read_file(self.folder / ANSWERS_FILE, np.load).astype(np.float32)
        # score = scale · cosine + the emoji's learned bias (how often people use it at all)
        self.scale = float(self.manifest.get("sqam", {}).get("model", {}).get("scale", 1.0))
        bias_path = self.folder / BIAS_FILE
        self.bias = (
            read_file(bias_path, np.load).astype(np.float32)
            if bias_path.exists()
            else np.zeros(len(self.answers), np.float32)
        )
        from models.catalog import EmojiIndex

        self.index = read_file(self.folder / CHARS_FILE, EmojiIndex.load)
        self.chars = self.index.chars
        self._positions = self.index.positions
        self._heads: TextHeads | None = None
        self._heads_note: str | None = None  # None: not loaded yet
        self.featurizer = TextFeaturizer(read_file(self.folder / VOCAB_FILE, Vocabulary.load))
        vectors = self.encoder.word_vectors
        if vectors is not None and len(vectors) != len(self.featurizer.vocab.words):
            # a cut or swapped vocabulary reads, but every word past the cut would be unknown
            raise ArtifactError(
                f"{self.folder / VOCAB_FILE} has {len(self.featurizer.vocab.words):,} words and "
                f"{QUESTION_FILE} {len(vectors):,} word vectors: the two are not of one training; restore "
                "the folder (`git checkout -- models/artifacts` for the shipped one) or rebuild both with "
                "`emojibot train sqam`"
            )
        self.names = None  # emoji names in the message (models.names), on whole-catalog scores
        if (self.folder / NAMES_FILE).exists():
            from models.names import NameMatch, vocab_digest

            names = read_file(self.folder / NAMES_FILE, NameMatch.load)
            # built for another vocabulary (`train sqam` ran since): its rows mean other words
            self.names = names if names.vocab_digest == vocab_digest(self.featurizer.vocab.words) else None
        self.meanings = None  # words near an emoji's names in meaning (models.names), next to the names
        if self.names is not None and (self.folder / MEANINGS_FILE).exists():
            from models.names import NameMatch

            meanings = read_file(self.folder / MEANINGS_FILE, NameMatch.load)
            self.meanings = meanings if meanings.vocab_digest == self.names.vocab_digest else None
        self.catalog_head = None  # the linear n-gram model of whole-catalog ranking (models.catalog_head)
        self.catalog_head_note = f"no {CATALOG_HEAD_FILE}: the SQAM and the names rank the catalog"
        if (self.folder / CATALOG_HEAD_FILE).exists():
            from models.catalog_head import CatalogHead, idf_digest

            head = read_file(self.folder / CATALOG_HEAD_FILE, CatalogHead.load)
            if self.encoder.ngram_idf is None or head.idf_digest != idf_digest(self.encoder.ngram_idf):
                # trained on another SQAM's n-gram weighting (`train sqam` ran since)
                self.catalog_head_note = f"{CATALOG_HEAD_FILE} reads another n-gram weighting: ignored"
            else:
                self.catalog_head = head.bind(self._positions, len(self.chars))
                self.catalog_head_note = f"catalog head: {len(head.emojis)} emojis, weight {head.weight:g}"
        self.sentence = None  # the distilled sentence encoder (models.sentence)
        self.sentence_note = f"no {SENTENCE_FILE}: no sentence term"
        if (self.folder / SENTENCE_FILE).exists():
            from models.sentence import SentenceTerm, inputs_digest

            term = read_file(self.folder / SENTENCE_FILE, SentenceTerm.load)
            if self.encoder.ngram_idf is None or term.inputs_digest != inputs_digest(self.encoder):
                # trained on another SQAM's inputs (`train sqam` ran since)
                self.sentence_note = f"{SENTENCE_FILE} reads another SQAM's inputs: ignored"
            else:
                self.sentence = term.bind(self._positions, len(self.chars))
                self.sentence_note = f"sentence term: {len(term.emojis)} emojis, weight {term.weight:g}"
        # the name slot (models.names.give_slot): the match from which a named emoji gets
        # the fifth place, chosen by `train catalog-head` (0: off)
        self.name_slot = 0.0
        if self.names is not None and (self.folder / NAME_SLOT_FILE).exists():
            self.name_slot = float(read_file(self.folder / NAME_SLOT_FILE, _read_threshold))
        from models.grave import HELD_BACK

        # what a grave message never gets (models.grave): catalog positions
        self.held_back = np.asarray(sorted({self._positions[e] for e in HELD_BACK if e in self._positions}), np.int64)
        from models.complaint import DELIGHT, Tone

        # what a message that reads negative never gets (models.complaint): catalog
        # positions, and how negative a message reads, over this vocabulary's words
        self.delight = np.asarray(sorted({self._positions[e] for e in DELIGHT if e in self._positions}), np.int64)
        self.tone = Tone(self.featurizer.vocab.words)
        # the learned half of what reads as a complaint, with the lexicon's threshold its
        # cutoff was chosen with (`train complaint`); without it the lexicon alone at THRESHOLD
        self.complaint_model = None
        self.complaint_note = f"no {COMPLAINT_FILE}: the lexicon alone reads complaints"
        if (self.folder / COMPLAINT_FILE).exists():
            from models.complaint import ComplaintModel
            from models.sentence import inputs_digest

            model = read_file(self.folder / COMPLAINT_FILE, ComplaintModel.load)
            if self.encoder.ngram_idf is None or model.inputs_digest != inputs_digest(self.encoder):
                self.complaint_note = f"{COMPLAINT_FILE} reads another SQAM's inputs: ignored"
            else:
                self.complaint_model = model
                self.complaint_note = f"complaints: tone ≤ {model.threshold:g} or model ≥ {model.cutoff:g}"
        self.prior = None  # the popularity mix (models.prior), last on whole-catalog scores
        if (self.folder / PRIOR_FILE).exists():
            from models.prior import PopularityMix

            mix = read_file(self.folder / PRIOR_FILE, PopularityMix.load)
            self.prior = mix.bind(self._positions, len(self.chars))

    @property
    def heads(self) -> TextHeads | None:
        """The supervised heads, loaded on first use: whole-catalog ranking does not read
        them, so the bot's cold start and memory do not pay for them."""
        if self._heads_note is None:
            self._heads, self._heads_note = self._load_heads()
        return self._heads

    @heads.setter
    def heads(self, value: TextHeads | None) -> None:
        self._heads, self._heads_note = value, "heads: set by the caller" if value else "heads: turned off"

    @property
    def heads_note(self) -> str:
        self.heads  # noqa: B018 (loads them)
        assert self._heads_note is not None
        return self._heads_note

    def _load_heads(self) -> tuple[TextHeads | None, str]:
        """The supervised heads, if present and tuned with this very SQAM (else none, and why)."""
        path = self.folder / HEADS_FILE
        if not path.exists():
            return None, f"no {HEADS_FILE}: the SQAM ranks alone (`emojibot train heads` builds it)"
        heads = read_file(path, TextHeads.load)
        if heads.sqam_digest != answers_digest(self.folder / ANSWERS_FILE):
            return None, f"{HEADS_FILE} was tuned with another SQAM: ignored until `emojibot train heads` reruns"
        self._head_positions = [
            np.asarray([self._positions[e] for e in g.emojis], dtype=np.int64) for g in heads.groups
        ]
        return heads, "heads: " + ", ".join(f"{g.name} ({len(g.emojis)} emojis)" for g in heads.groups)

    @property
    def catalog(self):
        """The emoji catalog (loaded on first use: plain ranking does not need it)."""
        return self.index.catalog

    def candidate_indices(self, candidates: Sequence[str]) -> np.ndarray:
        """Answer-matrix rows of the given emojis (Unicode or short names), duplicates
        removed, first occurrence kept. Raises UnknownEmojiError for an unknown one."""
        return self.index.rows(candidates)

    def cosines(self, texts: Sequence[str]) -> np.ndarray:
        """Raw (len(texts), catalog) cosines, without scale and bias."""
        return self.encoder.encode(self.featurizer.featurize(texts)) @ self.answers.T

    def scores(
        self,
        texts: Sequence[str],
        candidates: Sequence[str] | None = None,
        allow_empty: bool = False,
        **terms: bool,
    ) -> np.ndarray:
        """(len(texts), n_candidates) scores, ``scale · cosine + bias`` (+ over the whole
        catalog, the emoji names the text says, the meaning match and the catalog head,
        then mixed with the emojis' popularity: the mixture's probability, models.prior;
        then the guards); raises EmptyTextError on blank texts unless ``allow_empty`` (then
        a blank text is scored as an unknown word). ``terms`` turn parts off (or the heads
        on), as :class:`Terms` names them: ``SQAM_ALONE``, ``SUM_OF_TERMS`` and
        ``NO_GUARDS`` are the sets training reads."""
        _check_texts(texts, allow_empty)
        return self._scores(texts, candidates, Terms(**terms))[0]

    def scores_in_chunks(
        self, texts: Sequence[str], candidates: Sequence[str] | None = None, chunk: int = 512, **terms: bool
    ) -> np.ndarray:
        """:meth:`scores` of a whole collection (blank texts scored as an unknown word),
        ``chunk`` texts at a time so the intermediate arrays stay those of one chunk;
        ``terms`` as for :meth:`scores`."""
        parts = [
            self.scores(texts[i : i + chunk], candidates, allow_empty=True, **terms)
            for i in range(0, len(texts), chunk)
        ]
        if not parts:
            return np.zeros((0, len(self.chars) if candidates is None else len(self.candidate_indices(candidates))))
        return np.concatenate(parts)

    def _scores(
        self, texts: Sequence[str], candidates: Sequence[str] | None, terms: Terms = Terms()
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(scores, cosines, each text's weight of popularity): the first two (len(texts),
        n_candidates), the last (len(texts), 1) where the popularity mix applies, else None."""
        batch = self.featurizer.featurize(texts)
        if candidates is None:
            # The whole catalog: the SQAM, the emoji names the text says and the catalog
            # head. The TweetEval and airline heads know 20 and 3 emojis and were measured
            # to cost whole-catalog ranking (README), so they only choose among given
            # candidates (and the names and the catalog head stay out of those choices,
            # which the heads were tuned without).
            head = self.catalog_head if terms.catalog_head and self.catalog_head is not None else None
            sentence = self.sentence if terms.sentence and self.sentence is not None else None
            rows = (
                self.encoder.ngram_rows(batch.ngram_ids, canonical=False)
                if head is not None or sentence is not None
                else None
            )
            x = self.encoder.inputs(batch, rows)
            q = self.encoder.tower(x)
            cos = q @ self.answers.T
            s = self.scale * cos + self.bias
            named = self.names.match(batch.word_ids) if terms.names and self.names is not None else None
            if named is not None and self.names.weight:
                named.add_to(s, self.names.weight)
            if terms.names and terms.meanings and self.meanings is not None and self.meanings.weight:
                self.meanings.match(batch.word_ids).add_to(s, self.meanings.weight)
            if head is not None and head.weight:
                head.add_to(s, rows, head.weight)
            if sentence is not None and sentence.weight:
                sentence.add_to(s, rows, x, sentence.weight)
            if terms.heads_on_catalog and self.heads is not None:
                self._add_heads(s, texts, batch, None)
            mix_rows = None
            if terms.prior and self.prior is not None and self.prior.weight:
                s, mix_rows = self.prior.mixed(s)
            if named is not None and terms.name_slot and self.name_slot:
                from models.names import give_slot

                give_slot(s, *named.strongest(), self.name_slot)
            # The guards: over the whole catalog only, where the bot chooses (auto-react,
            # /emojify). Given candidates are the caller's choice, with meanings of their
            # own: the airline benchmark's 😈 stands for a neutral tweet, 🎉 for a glad one.
            from models.grave import hold_back

            if terms.grave:
                from models.grave import grave_rows

                hold_back(s, grave_rows(texts), self.held_back)
            if terms.complaint:
                # an emoji of delight the message names is its topic, not a cheer (☀️ for
                # "this sunny weather is killing me", 🎉 for "the party got cancelled"),
                # unless the ranking puts another emoji the message names above it (🐱,
                # not 😻, for "my cat died"; 💔, not 😍 💕, for "my heart is broken")
                from models.complaint import named_topic

                negative = self.complaints(batch, x)
                keep = named_topic(named, s, negative, self.delight) if named is not None else None
                hold_back(s, negative, self.delight, keep)
            if terms.opposite:
                for row, opposite in self._opposed(batch, named):
                    hold_back(s, np.array([row]), opposite)
            return s, cos, mix_rows
        q = self.encoder.encode(batch)
        rows = self.candidate_indices(candidates)
        cos = q @ self.answers[rows].T
        s = self.scale * cos + self.bias[rows]
        if self.heads is not None:
            self._add_heads(s, texts, batch, rows)
        return s, cos, None

    def _opposed(self, batch: TextBatch, named: NameHits | None = None) -> list[tuple[int, np.ndarray]]:
        """The opposite guard's work: per text of ``batch`` that names an emoji of an opposite
        pair wholly, the catalog positions to hold back (``named``: the batch's name match,
        where the caller has it; the guard reads the names even where their term is off)."""
        if self.names is None:
            return []
        return (named if named is not None else self.names.match(batch.word_ids)).opposed(self.names.opposites)

    def complaints(self, batch: TextBatch, x: np.ndarray | None = None) -> np.ndarray:
        """Indices of the texts of ``batch`` that read as a complaint (models.complaint): the
        lexicon's tone at or below its threshold, or the complaint model's probability at
        its cutoff (``x``: the tower's inputs, when the caller has them)."""
        model = self.complaint_model
        if model is None:
            return self.tone.rows(batch.word_ids)
        lexicon = self.tone.compound(batch.word_ids) <= model.threshold
        x = self.encoder.inputs(batch) if x is None else x
        return np.flatnonzero(lexicon | model.flags(x))

    def _add_heads(self, s: np.ndarray, texts: Sequence[str], batch: TextBatch, rows: np.ndarray | None) -> None:
        """Add each head's centred scores to the columns of ``s`` that hold its emojis.

        (Skipping a head for texts whose top k it cannot change was tried: on tweets the
        TweetEval head matters to 99.6% of them and the airline head to 72%, and the
        bookkeeping cost what it saved.)"""
        assert self.heads is not None
        targets = []  # (group, its members' columns in s, which members)
        for g, pos in zip(self.heads.groups, self._head_positions, strict=True):
            if rows is None:
                targets.append((g, pos, slice(None)))
                continue
            col = {int(r): j for j, r in enumerate(rows)}
            members = [m for m, p in enumerate(pos) if int(p) in col]
            if members:
                targets.append((g, np.asarray([col[int(pos[m])] for m in members]), np.asarray(members)))
        if not targets:
            return
        x = self.heads.features.transform(texts)
        # a head's sentence block (TweetEval's, the airline stack's member) reads the whole
        # MiniLM encoder: only for its candidates, never over the whole catalog (README,
        # "Among fixed emoji sets")
        sentences = self.heads.sentence_vectors(texts) if any(g.reads_sentences for g, _, _ in targets) else None
        for g, cols, members in targets:
            s[:, cols] += g.adjust(x, self.encoder.word_vectors, batch, sentences)[:, members]

    def rank(self, texts: Sequence[str], k: int = 5, candidates: Sequence[str] | None = None) -> list[list[Ranked]]:
        """Top-``k`` emojis for each text, best first."""
        if not texts:
            return []
        return self.score_and_rank(texts, k, candidates)[1]

    def score_and_rank(
        self,
        texts: Sequence[str],
        k: int = 5,
        candidates: Sequence[str] | None = None,
        allow_empty: bool = False,
        **terms: bool,
    ) -> tuple[np.ndarray, list[list[Ranked]]]:
        """:meth:`scores` and :meth:`rank` of the same texts from one scoring (an
        evaluation's metrics and the reactions the bot would add); ``terms`` as for
        :meth:`scores`."""
        _check_texts(texts, allow_empty)
        parts = Terms(**terms)
        s, cos, mix_rows = self._scores(texts, candidates, parts)
        return s, self._top(s, cos, k, candidates, mix_rows)

    def explain(self, text: str, k: int = 5) -> Explanation:
        """The top ``k`` of ``text`` over the whole catalog, each emoji with the parts of its
        score, then the emojis the guards moved out of that top ``k``: what `emojibot emojify
        --explain` prints. Scores the text once per part (a few milliseconds)."""
        from models.grave import grave_rows

        _check_texts([text], allow_empty=False)
        scored, cosines, _ = self._scores([text], None, Terms())
        score, cos = scored[0], cosines[0]
        unguarded = self._scores([text], None, Terms(**NO_GUARDS))[0][0]
        total = self.scores([text], **SUM_OF_TERMS)[0]
        parts: dict[str, np.ndarray] = {}
        for name, off, base in _PARTS:
            with_it = self.scores([text], **SUM_OF_TERMS, **base)[0] if base else total
            parts[name] = with_it - self.scores([text], **SUM_OF_TERMS, **base, **off)[0]
        parts = {"sqam": total - sum(parts.values()), **parts}
        if self.prior is not None and self.prior.weight:
            mixed, mix_rows = self.prior.mixed(total[None])
            popularity = self.prior.given(rows=mix_rows)[0]
            message = mixed[0] - popularity
        else:
            popularity, message = np.zeros_like(total), total
        grave = len(grave_rows([text])) > 0
        batch = self.featurizer.featurize([text])
        tone, negative = float(self.tone.compound(batch.word_ids)[0]), len(self.complaints(batch)) > 0
        model = self.complaint_model
        p_complaint = None if model is None else float(model.probability(self.encoder.inputs(batch))[0])
        k = max(1, min(k, len(self.chars)))

        def best(s: np.ndarray) -> list[int]:
            return [int(i) for i in np.argsort(-s, kind="stable")[:k]]

        top = best(score)
        slotted = set(best(unguarded)) - set(
            best(self._scores([text], None, Terms(name_slot=False, **NO_GUARDS))[0][0])
        )
        held = set(self.held_back.tolist()) if grave else set()
        opposed = {int(c) for _, cols in self._opposed(batch) for c in cols}

        def one(i: int, moved: bool) -> Explained:
            return Explained(
                self.chars[i], float(score[i]), float(cos[i]), {n: float(v[i]) for n, v in parts.items()},
                float(message[i]), float(popularity[i]), i in slotted,
                ("grave" if i in held else "opposite" if i in opposed else "complaint") if moved else None,
            )  # fmt: skip

        return Explanation(
            text, tone, grave, negative,
            [one(i, False) for i in top] + [one(i, True) for i in best(unguarded) if i not in top],
            p_complaint, TONE_THRESHOLD if model is None else model.threshold, None if model is None else model.cutoff,
        )  # fmt: skip

    def _top(
        self, s: np.ndarray, cos: np.ndarray, k: int, candidates: Sequence[str] | None, mix_rows: np.ndarray | None
    ) -> list[list[Ranked]]:
        """The top ``k`` of each row of ``s`` as :class:`Ranked`; ``mix_rows``: each row's
        weight of popularity where ``s`` went through the popularity mix, so each emoji's
        popularity share means something (None: 0)."""
        names = self.chars if candidates is None else self.index.names(candidates)[1]
        k = max(1, min(k, s.shape[1]))
        # the k best of each row, then those k in order: whole-batch array operations (2.6 ms
        # per 256 texts; one argpartition and a per-row loop took 7.2)
        top = top_k(s, k)
        order = np.argsort(-np.take_along_axis(s, top, axis=1), axis=1, kind="stable")
        top = np.take_along_axis(top, order, axis=1)
        top_s = np.take_along_axis(s, top, axis=1)
        top_fits = np.take_along_axis(cos, top, axis=1).tolist()
        if mix_rows is not None and candidates is None and self.prior is not None:
            # the mixture's second half as a share of the probability (a guard's held-back
            # emoji, scored below 0, and the name slot's are no mixture)
            given = self.prior.given(top, mix_rows)
            popular = np.where(top_s > 0, np.clip(given / np.maximum(top_s, 1e-12), 0.0, 1.0), 0.0).tolist()
        else:
            popular = np.zeros(top.shape).tolist()
        return [
            [Ranked(names[i], sc, f, p) for i, sc, f, p in zip(idx, row_s, row_f, row_p, strict=True)]
            for idx, row_s, row_f, row_p in zip(top.tolist(), top_s.tolist(), top_fits, popular, strict=True)
        ]
