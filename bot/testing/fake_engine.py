"""Engines for core and adapter tests that need no trained model.

``FakeEngine`` ranks the catalog by the words of the text found in an emoji's Slack short
names (most) and Unicode name ("merry christmas" → 🎄 first), ties broken by a fixed order of common emojis, so a
test can say which emoji it expects without loading TensorFlow. ``FakePictureEngine``
answers a picture (it must decode, through the same ``decode_picture`` the real engine
uses) with a fixed distribution. Both speak the real engines' async interface: ``start``,
``close``, ``rank_async`` / ``answer_async``, ``version``, ``novel_png``.
"""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass

_STOP = set("a an and are at be but by face for from i in is it me my of on or so that the this to we with you".split())
_COMMON = ["😂", "❤️", "😍", "😭", "😊", "🔥", "🎉", "👍", "🙏", "😎"]


@dataclass(frozen=True)
class FakeRanked:
    emoji: str
    score: float
    fit: float = 0.0
    popular: float = 0.0  # as models.ranker.Ranked


class FakeEngine:
    version = "fake-text-1"

    def __init__(self, catalog=None):
        from models.catalog import EmojiCatalog

        self.catalog = catalog or EmojiCatalog.load()
        self.requests = 0
        self.closed = False
        self._words: list[tuple[str, set[str], set[str]]] = []  # (emoji, short-name words, name words)
        for e in self.catalog:
            short = {w for n in e.short_names for w in re.findall(r"[a-z]+", str(n).lower())}
            self._words.append((e.char, short, set(re.findall(r"[a-z]+", str(e.name).lower()))))
        self._common = [self.catalog.lookup(c).char for c in _COMMON if c in self.catalog]

    async def start(self) -> None:
        self.closed = False

    async def close(self) -> None:
        self.closed = True

    def rank(self, texts: Sequence[str], k: int = 5, candidates=None) -> list[list[FakeRanked]]:
        return [self._rank(t, k, candidates) for t in texts]

    def _rank(self, text: str, k: int, candidates) -> list[FakeRanked]:
        words = set(re.findall(r"[a-z]+", text.lower())) - _STOP
        allowed = {self.catalog.lookup(c).char for c in candidates} if candidates else None
        scored = []
        for i, (char, short, name) in enumerate(self._words):
            if allowed is not None and char not in allowed:
                continue
            hits = 0.5 * len(words & short) + 0.2 * len(words & name - short)  # a short name says most
            prior = (len(self._common) - self._common.index(char)) / 100 if char in self._common else 0.0
            scored.append((hits + prior, -i, char))
        scored.sort(reverse=True)
        return [FakeRanked(c, round(s, 4), round(s, 4)) for s, _, c in scored[:k]]

    async def rank_async(self, text: str, k: int = 5, candidates=None) -> list[FakeRanked]:
        if self.closed:
            raise RuntimeError("the emoji engine was closed")
        if not text.strip():
            from models.ranker import EmptyTextError

            raise EmptyTextError("text is empty: give a message to find emojis for")
        self.requests += 1
        await asyncio.sleep(0)
        return self._rank(text, k, candidates)


@dataclass
class FakePictureAnswer:
    top: list[tuple[str, float]]
    mode: str


class FakePictureEngine:
    version = "fake-picture-1"

    def __init__(self, delay: float = 0.0):
        self.delay = delay
        self.closed = False
        self.requests = 0

    async def start(self) -> None:
        self.closed = False

    async def close(self) -> None:
        self.closed = True

    async def answer_async(self, data: bytes, k: int = 5, candidates=None) -> FakePictureAnswer:
        from models.picture import decode_picture

        if self.closed:
            raise RuntimeError("the picture engine was closed")
        await asyncio.to_thread(decode_picture, bytes(data))  # a picture that cannot be read fails here
        if self.delay:
            await asyncio.sleep(self.delay)
        self.requests += 1
        top = [("🐸", 0.5), ("🌳", 0.3), ("💧", 0.2)][:k]
        return FakePictureAnswer(top, top[0][0])

    async def novel_png(self, answer) -> bytes:
        from PIL import Image

        buf = io.BytesIO()
        Image.new("RGBA", (36, 36), (255, 200, 0, 255)).save(buf, "PNG")
        return buf.getvalue()
