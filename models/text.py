"""Tweet-aware tokenizer and the text features both the Keras model and the engine use.

The tokenizer is separate from the model (as in DeepMoji): it turns raw chat text into
lower-case tokens that GloVe knows, with placeholders for what tweets are full of —
``<url>``, ``<user>``, ``<hashtag>``, ``<number>``, elongations (``sooooo`` → ``soo <elong>``),
emoticons (``:)`` → ``<smile>``), and Instagram-style place tags (``@ Venice`` → ``<at>``).
Emojis inside the text are replaced by the words of their name, so emoji-only messages
still say something.

Two features come out of a text:
- word ids into the shipped vocabulary (the SQAM's word vectors, the heads' word block
  and the airline BiLSTM read them), and
- hashed n-gram ids (word uni/bigrams and character 3–5-grams, fastText style) for a bag
  of n-grams branch that catches surface cues: hashtags, place names, spellings.
"""

from __future__ import annotations

import functools
import re
import unicodedata
import zlib
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAX_CHARS = 2_000  # longer texts are cut: a chat message past this adds nothing we use
MAX_TOKENS = 64
MAX_NGRAMS = 384
NGRAM_BUCKETS = 1 << 17
PAD, OOV = 0, 1
# The tokenizer's and the n-gram hashing's caches (chat repeats its words), bounded so
# that a long-running bot's memory is too: with every cache full they hold about 85 MB
# (measured with tracemalloc; the character n-grams as 4-byte arrays, not tuples of
# Python ints, which took 160 MB for 200,000 words).
CACHE_WORDS = 100_000
CACHE_CHUNKS = 50_000
CACHE_BIGRAMS = 50_000
SPECIALS = (
    "<pad>", "<oov>", "<url>", "<user>", "<hashtag>", "<number>", "<elong>", "<at>", "<vs>",
    "<smile>", "<sad>", "<lolface>", "<wink>", "<heart>", "<tongue>", "<emoji>", "<allcaps>",
)  # fmt: skip

_EMOTICONS = [
    (r"<3+", "<heart>"),
    (r"[:=;]-?[dD]+\b|\bx[dD]+\b", "<lolface>"),
    (r";-?[)\]]+|;-?[dD]\b", "<wink>"),
    (r"[:=]-?[)\]]+|\(+-?[:=]", "<smile>"),
    (r"[:=]-?[(\[]+|[)\]]+-?[:=]|:'\(", "<sad>"),
    (r"[:=;]-?[pP]+\b", "<tongue>"),
]
_TOKEN_RE = re.compile(
    r"(?P<url>https?://\S+|www\.\S+)"
    r"|(?P<user>@\w+)"
    r"|(?P<at>@)"
    r"|(?P<hashtag>#\w+)"
    + "".join(f"|(?P<emoticon{i}>{pat})" for i, (pat, _) in enumerate(_EMOTICONS))
    + r"|(?P<vs>\x02)"
    r"|(?P<emoji>\x01)"
    r"|(?P<number>\d+(?:[.,:]\d+)*(?:st|nd|rd|th|am|pm|s|k)?\b)"
    r"|(?P<word>[^\W\d_]+(?:['’][^\W\d_]+)?|\d+[^\W\d_]+)"
    r"|(?P<punct>[!?.]+|[^\w\s])"
)
_LONE_VS_RE = re.compile(r"(?<!\S)\ufe0f+")
# Every emoji contains at least one code point from these ranges (or a keycap / © ®).
_MAYBE_EMOJI_RE = re.compile("[\u00a9\u00ae\u203c-\u3299\U0001f000-\U0001faff\u20e3]")
_ELONG_RE = re.compile(r"(.)\1{2,}")


def _two_of(m: re.Match) -> str:  # "soooo" → "soo" (a function: a template costs a parse per call)
    return m.group(1) * 2


_CONTROL = {c: " " for c in range(32)} | {0x7F: " "}
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


@functools.lru_cache(maxsize=CACHE_WORDS)
def _word_tokens(tok: str) -> tuple[str, ...]:
    """The tokens one word of a message becomes (cached: chat repeats its words)."""
    out = ["<allcaps>"] if len(tok) > 2 and tok.isupper() else []
    low = tok.lower().replace("’", "'")
    short = _ELONG_RE.sub(_two_of, low)
    if short != low:
        out += (short, "<elong>")
    elif low.endswith("n't") and len(low) > 3:
        out += (low[:-3], "n't")
    elif "'" in low:
        head, _, tail = low.partition("'")
        out += (head, "'" + tail)
    else:
        out.append(low)
    return tuple(out)


class TweetTokenizer:
    """Lower-case tokens for chat text; stateless apart from the emoji-name table."""

    def __init__(self) -> None:
        import emoji as emoji_pkg

        self._emoji = emoji_pkg

    def _emoji_to_words(self, text: str) -> str:
        def name(chars: str, data: dict) -> str:
            words = re.sub(r"[_:]+", " ", data.get("en", "")).strip()
            return f" \x01 {words} "

        # Lone variation selectors are what is left where a tweet's emojis were removed;
        # keep them as a cue before the emoji package drops them.
        if "\ufe0f" in text:  # most messages hold none: skip the substitution's pass
            text = _LONE_VS_RE.sub(" \x02 ", text)
        if not _MAYBE_EMOJI_RE.search(text):  # most messages: skip the slow full scan
            return text
        return self._emoji.replace_emoji(text, replace=name)

    def tokenize(self, text: str) -> list[str]:
        # Lone surrogates (undecodable bytes from a terminal, "\udc80" in platform JSON)
        # cannot be encoded; replace them before anything hashes the text.
        text = text[:MAX_CHARS].encode("utf-8", "replace").decode("utf-8")
        text = unicodedata.normalize("NFC", text)
        if _CONTROL_RE.search(text):  # rare: skip the slower translate for the rest
            text = text.translate(_CONTROL)
        text = self._emoji_to_words(text)
        # No token spans whitespace (the pattern has no lookbehind, and a \b at a chunk's
        # edge sees what whitespace would show it), so a message's tokens are its
        # whitespace-separated chunks' tokens, and chat repeats its chunks ("lunch?",
        # "#mondaymotivation"): cached, a third of the time of one pass over the message.
        tokens: list[str] = []
        for chunk in text.split():
            tokens.extend(_chunk_tokens(chunk))
            if len(tokens) >= MAX_TOKENS:
                break
        return tokens[:MAX_TOKENS]


@functools.lru_cache(maxsize=CACHE_CHUNKS)
def _chunk_tokens(chunk: str) -> tuple[str, ...]:
    """The tokens of one whitespace-free chunk of a message."""
    tokens: list[str] = []
    for m in _TOKEN_RE.finditer(chunk):
        kind = m.lastgroup or ""
        tok = m.group()
        if kind == "word":
            tokens.extend(_word_tokens(tok))
        elif kind == "hashtag":
            tokens.append("<hashtag>")
            tokens.append(_ELONG_RE.sub(_two_of, tok[1:].lower()))
        elif kind == "punct":
            tokens.append(tok[:3] if tok[0] in "!?." else tok)
        elif kind.startswith("emoticon"):
            tokens.append(_EMOTICONS[int(kind[8:])][1])
        elif kind in ("url", "user", "at", "number", "vs", "emoji"):
            tokens.append(f"<{kind}>")
    return tuple(tokens)


def _hash(s: str) -> int:
    return zlib.crc32(s.encode("utf-8")) % (NGRAM_BUCKETS - 1) + 1


# CRC-32 of each n-gram's prefix ("c3:" …): zlib continues a CRC from it over the n-gram's
# bytes, the same value as hashing the joined string, without building it.
_CHAR_PREFIX = {n: zlib.crc32(f"c{n}:".encode()) for n in (3, 4, 5)}


@functools.lru_cache(maxsize=CACHE_WORDS)
def _char_ngram_ids(token: str) -> bytes:
    """A word's hashed character 3–5-grams, as the bytes of an int32 array: a message's are
    joined in one C call (kept as Python ints, they cost a third of featurising). For an
    ASCII word a character is a byte, so each n-gram is a slice of the word's bytes and its
    hash a CRC continued from the prefix's (:data:`_CHAR_PREFIX`): the same ids in half the
    time of a new word (3.8 against 7.3 µs)."""
    if token.startswith("<") or len(token) < 2:
        return b""
    w = f"<{token}>"
    if w.isascii():
        b, crc, buckets = w.encode(), zlib.crc32, NGRAM_BUCKETS - 1
        ids = [crc(b[i : i + n], _CHAR_PREFIX[n]) % buckets + 1 for n in (3, 4, 5) for i in range(len(b) - n + 1)]
    else:
        ids = [_hash(f"c{n}:" + w[i : i + n]) for n in (3, 4, 5) for i in range(len(w) - n + 1)]
    return array("i", ids).tobytes()


@functools.lru_cache(maxsize=CACHE_WORDS)
def _word_id(token: str) -> int:
    return _hash("w:" + token)


@functools.lru_cache(maxsize=CACHE_BIGRAMS)
def _bigram_id(a: str, b: str) -> int:
    return _hash("b:" + a + " " + b)


def ngram_ids(tokens: Sequence[str]) -> array:
    """Hashed word unigrams, bigrams and character 3–5-grams of words (0 is padding), an
    int32 array."""
    ids = array("i", map(_word_id, tokens))
    ids.extend(map(_bigram_id, tokens, tokens[1:]))
    ids.frombytes(b"".join(map(_char_ngram_ids, tokens)))
    return ids[:MAX_NGRAMS]


@dataclass
class Vocabulary:
    """Word → row of the shipped word-vector matrix (rows 0/1 are padding/unknown)."""

    words: list[str]

    def __post_init__(self) -> None:
        self.index = {w: i for i, w in enumerate(self.words)}

    def ids(self, tokens: Iterable[str]) -> list[int]:
        get = self.index.get
        return [get(t, OOV) for t in tokens]

    def save(self, path: Path) -> None:
        path.write_text("\n".join(self.words) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Vocabulary:
        return cls(path.read_text(encoding="utf-8").split("\n")[:-1])


@dataclass
class TextBatch:
    """Padded features of a batch of texts."""

    word_ids: np.ndarray  # (B, T) int32, 0 = padding
    ngram_ids: np.ndarray  # (B, G) int32, 0 = padding
    lengths: np.ndarray  # (B,) int32, number of word tokens (≥ 1)


def mean_word_vectors(word_vectors: np.ndarray, word_ids: np.ndarray) -> np.ndarray:
    """(B, D) mean of each text's word vectors over its words (padding left out; a text
    without words gives zeros): what the SQAM's question tower pools, and the heads'
    word block reads (L2-normalised there). One sparse product of the texts' word counts
    with the table: a fifth of the time of gathering a (B, T, D) array and summing it."""
    from scipy.sparse import csr_matrix

    nz = word_ids != PAD
    counts = nz.sum(axis=1)
    indptr = np.zeros(len(word_ids) + 1, np.int64)
    np.cumsum(counts, out=indptr[1:])
    ones = np.ones(int(indptr[-1]), word_vectors.dtype)
    m = csr_matrix((ones, word_ids[nz], indptr), shape=(len(word_ids), len(word_vectors)))
    out = np.asarray(m @ word_vectors, np.float32)
    out /= np.maximum(counts, 1).astype(np.float32)[:, None]
    return out


class TextFeaturizer:
    """Tokenizer + vocabulary → padded arrays, for training and inference alike."""

    def __init__(self, vocab: Vocabulary, tokenizer: TweetTokenizer | None = None):
        self.vocab = vocab
        self.tokenizer = tokenizer or TweetTokenizer()

    def featurize(self, texts: Sequence[str], pad_to: tuple[int, int] | None = None) -> TextBatch:
        toks = [self.tokenizer.tokenize(t) or ["<oov>"] for t in texts]
        wids = [self.vocab.ids(t) for t in toks]
        gids = [ngram_ids(t) or [PAD] for t in toks]
        T = pad_to[0] if pad_to else max(len(w) for w in wids)
        G = pad_to[1] if pad_to else max(len(g) for g in gids)
        W = np.zeros((len(texts), T), dtype=np.int32)
        N = np.zeros((len(texts), G), dtype=np.int32)
        L = np.zeros(len(texts), dtype=np.int32)
        for i, (w, g) in enumerate(zip(wids, gids, strict=False)):
            w = w[:T]
            W[i, : len(w)] = w
            L[i] = max(1, len(w))
            g = g[:G]
            N[i, : len(g)] = g
        return TextBatch(W, N, L)
