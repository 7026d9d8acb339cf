"""What training does with all-MiniLM-L6-v2 (the NumPy encoder of ``models.minilm``):
static word vectors distilled from it for the SQAM's question tower, and sentence vectors
kept in a cache outside the artifacts for the next run."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from models.minilm import MiniLM, text_keys

# What the tokenizer's placeholders mean, in words the encoder knows.
PLACEHOLDER_WORDS = {
    "<url>": "link", "<user>": "someone", "<hashtag>": "hashtag", "<number>": "number",
    "<elong>": "very", "<at>": "at", "<vs>": "emoji", "<smile>": "smile", "<sad>": "sad",
    "<lolface>": "laughing", "<wink>": "wink", "<heart>": "love", "<tongue>": "playful",
    "<emoji>": "emoji", "<allcaps>": "shouting",
}  # fmt: skip


def static_word_vectors(words: Sequence[str], dim: int, encoder: MiniLM | None = None, progress: bool = False):
    """Static word vectors distilled from the sentence encoder (Model2Vec's recipe): each
    word is encoded alone, the 384-d outputs are centred and projected on their ``dim``
    principal axes. Row 0 (padding) and ``<oov>`` are zero. Returns float32 (len(words), dim)."""
    enc = encoder or MiniLM()
    texts = [PLACEHOLDER_WORDS.get(w, w) for w in words]
    v = enc.encode(texts, batch=1024, progress=progress).astype(np.float64)
    v -= v.mean(axis=0)
    _, _, vt = np.linalg.svd(v[:: max(1, len(v) // 20_000)], full_matrices=False)
    out = (v @ vt[:dim].T).astype(np.float32)
    out /= float(np.sqrt((out**2).sum(axis=1).mean()))  # unit norm on average
    for i, w in enumerate(words):
        if w in ("<pad>", "<oov>"):
            out[i] = 0.0
    return out


SENTENCE_CACHE = "minilm-sentences.npz"  # the sentence vectors' cache file, in cache_dir()


def cache_dir() -> Path:
    """Where training keeps what the encoder computed for reuse by a later run:
    ``$EMOJIBOT_CACHE_DIR``, else ``~/.cache/emojibot`` (never inside the artifacts)."""
    import os

    return Path(os.environ.get("EMOJIBOT_CACHE_DIR") or Path.home() / ".cache" / "emojibot")


def encode_cached(texts: Sequence[str], cache: Path | None, encoder: MiniLM | None = None, progress: bool = False):
    """(len(texts), 384) sentence vectors, as :meth:`MiniLM.encode`, reusing those of the
    cache file (``None``: no cache) and adding the texts it lacked to it. The vectors are
    kept as float16 (a cosine moves by under 1e-3) and returned as float32; the encoder is
    only loaded when a text is missing. Returns (vectors, how many were encoded now)."""
    keys = text_keys(texts)
    known_keys, known = np.zeros(0, "S16"), np.zeros((0, 384), np.float16)
    if cache is not None and cache.exists():
        try:
            with np.load(cache) as z:
                known_keys, known = z["keys"], z["vectors"]
        except (OSError, ValueError, KeyError) as exc:  # cut short or not ours: start it again
            import sys

            print(f"ignoring the unreadable sentence cache {cache} ({exc}); it will be rewritten", file=sys.stderr)
    where = {k: i for i, k in enumerate(known_keys.tolist())}
    missing = sorted({k for k in keys.tolist() if k not in where})
    out = np.zeros((len(texts), 384), np.float32)
    if missing:
        first = {}
        for i, k in enumerate(keys.tolist()):
            first.setdefault(k, i)
        new = (encoder or MiniLM()).encode([texts[first[k]] for k in missing], progress=progress).astype(np.float16)
        known_keys = np.concatenate([known_keys, np.asarray(missing, "S16")])
        known = np.concatenate([known, new])
        where.update({k: len(where) + j for j, k in enumerate(missing)})
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_name(cache.name + ".tmp.npz")
            np.savez(tmp, keys=known_keys, vectors=known)
            tmp.replace(cache)
    out[:] = known[[where[k] for k in keys.tolist()]]
    return out, len(missing)


def remember_cached(ranker, texts: Sequence[str], candidates: Sequence[str] | None = None) -> None:
    """Before an evaluation ranks ``texts`` among a head's candidates with ``ranker``
    (a :class:`models.ranker.TextRanker`): where its heads read sentence vectors (only
    those among ``candidates``, where given: the catalog characters of the emojis ranked),
    hand them the texts' vectors from the sentence cache
    (:func:`models.heads.remember_sentences`), encoding and adding those it lacks. The
    retrain gate, `bench text` and `evaluate tweeteval` rank the same tweets again and
    again, and read them back instead of running the encoder; the figures are the same
    either way."""
    if ranker.heads is None:
        return
    wanted = None if candidates is None else set(candidates)
    if not any(g.reads_sentences and (wanted is None or wanted & set(g.emojis)) for g in ranker.heads.groups):
        return
    from models.heads import remember_sentences

    vectors, _ = encode_cached(texts, cache_dir() / SENTENCE_CACHE)
    remember_sentences(texts, vectors)
