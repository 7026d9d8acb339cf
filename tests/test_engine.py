"""The async micro-batching engine over the shipped ranker."""

import asyncio

import pytest

from bot.core.engine import EmojiEngine
from models.catalog import UnknownEmojiError
from models.ranker import EmptyTextError

TEXTS = [
    "happy birthday to my best friend",
    "merry christmas everyone",
    "this game is on fire",
    "sunny day at the beach",
    "I love you so much",
    "my flight got cancelled again",
]


async def test_concurrent_requests_share_model_calls(ranker):
    async with EmojiEngine(ranker, max_batch=64, max_wait_ms=5.0) as engine:
        results = await asyncio.gather(*(engine.rank(TEXTS[i % len(TEXTS)], k=5) for i in range(120)))
        assert engine.requests == 120
        assert engine.batches < 40  # many callers per model call
    direct = ranker.rank(TEXTS, k=5)
    for i, res in enumerate(results):
        assert [r.emoji for r in res] == [r.emoji for r in direct[i % len(TEXTS)]]


async def test_errors_stay_with_their_caller(ranker):
    async with EmojiEngine(ranker) as engine:
        good = asyncio.ensure_future(engine.rank("good morning sunshine", k=3))
        with pytest.raises(EmptyTextError):
            await engine.rank("   ")
        with pytest.raises(UnknownEmojiError):
            await engine.rank("hello", candidates=["heart", "definitely_not_an_emoji"])
        assert len(await good) == 3


async def test_candidates_and_k(ranker):
    async with EmojiEngine(ranker) as engine:
        a, b = await asyncio.gather(
            engine.rank("worst airline ever, lost my bag", k=1, candidates=["🎉", "😈", "😡"]),
            engine.rank("worst airline ever, lost my bag", k=3, candidates=["🎉", "😈", "😡"]),
        )
    assert len(a) == 1 and len(b) == 3
    assert a[0].emoji == b[0].emoji
    assert {r.emoji for r in b} == {"🎉", "😈", "😡"}
