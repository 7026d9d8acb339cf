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
        results = await asyncio.gather(*(engine.rank_async(TEXTS[i % len(TEXTS)], k=5) for i in range(120)))
        assert engine.requests == 120
        assert engine.batches < 40  # many callers per model call
    direct = ranker.rank(TEXTS, k=5)
    for i, res in enumerate(results):
        assert [r.emoji for r in res] == [r.emoji for r in direct[i % len(TEXTS)]]


async def test_errors_stay_with_their_caller(ranker):
    async with EmojiEngine(ranker, max_wait_ms=20.0) as engine:
        good = asyncio.ensure_future(engine.rank_async("good morning sunshine", k=3))
        with pytest.raises(EmptyTextError):
            await engine.rank_async("   ")
        # an unknown candidate is found inside the batch; only its caller fails
        results = await asyncio.gather(
            engine.rank_async("hello", candidates=["heart", "definitely_not_an_emoji"]),
            engine.rank_async("hello", candidates=["heart", "fire"]),
            return_exceptions=True,
        )
        assert isinstance(results[0], UnknownEmojiError)
        assert [r.emoji for r in results[1]] and len(results[1]) == 2
        assert len(await good) == 3


async def test_a_failing_text_in_a_batch_fails_only_its_caller(ranker, monkeypatch):
    real_rank = ranker.rank

    def picky_rank(texts, k=5, candidates=None):
        if any("POISON" in t for t in texts):
            raise RuntimeError("cannot rank POISON")
        return real_rank(texts, k, candidates)

    monkeypatch.setattr(ranker, "rank", picky_rank)
    async with EmojiEngine(ranker, max_wait_ms=20.0) as engine:
        results = await asyncio.gather(
            engine.rank_async("happy birthday"),
            engine.rank_async("POISON pill"),
            engine.rank_async("merry xmas"),
            return_exceptions=True,
        )
    assert isinstance(results[1], RuntimeError)
    assert len(results[0]) == 5 and len(results[2]) == 5


async def test_close_during_a_running_batch_fails_its_callers(ranker, monkeypatch):
    import threading

    release = threading.Event()
    real_rank = ranker.rank

    def slow_rank(texts, k=5, candidates=None):
        release.wait(5)
        return real_rank(texts, k, candidates)

    monkeypatch.setattr(ranker, "rank", slow_rank)
    engine = EmojiEngine(ranker)
    taken = asyncio.ensure_future(engine.rank_async("taken by the worker"))
    await asyncio.sleep(0.05)  # the worker now holds it in a running batch
    await engine.close()
    release.set()
    with pytest.raises(RuntimeError, match="closed"):
        await asyncio.wait_for(taken, 5)
    # and the engine starts again after close
    monkeypatch.setattr(ranker, "rank", real_rank)
    assert len(await engine.rank_async("hello again", k=2)) == 2
    await engine.close()


@pytest.mark.parametrize("bad_k", [0, -3, 2.5, "3"])
async def test_bad_k_is_refused_and_the_worker_survives(ranker, bad_k):
    async with EmojiEngine(ranker) as engine:
        with pytest.raises(ValueError):
            await engine.rank_async("hello", k=bad_k)
        assert len(await engine.rank_async("hello", k=3)) == 3


async def test_empty_candidate_list_is_an_error(ranker):
    async with EmojiEngine(ranker) as engine:
        with pytest.raises(ValueError, match="empty"):
            await engine.rank_async("hello", candidates=[])


async def test_close_fails_waiting_callers_instead_of_hanging(ranker):
    engine = EmojiEngine(ranker)
    await engine.start()
    pending = asyncio.ensure_future(engine.rank_async("still waiting"))
    await engine.close()  # the request is queued while the worker is being stopped
    with pytest.raises(RuntimeError, match="closed"):
        await asyncio.wait_for(pending, 5)


async def test_sync_batch_rank(ranker):
    engine = EmojiEngine(ranker)
    out = engine.rank(["good morning", "good night"], k=2)
    assert [len(r) for r in out] == [2, 2]


async def test_candidates_and_k(ranker):
    async with EmojiEngine(ranker) as engine:
        a, b = await asyncio.gather(
            engine.rank_async("worst airline ever, lost my bag", k=1, candidates=["🎉", "😈", "😡"]),
            engine.rank_async("worst airline ever, lost my bag", k=3, candidates=["🎉", "😈", "😡"]),
        )
    assert len(a) == 1 and len(b) == 3
    assert a[0].emoji == b[0].emoji
    assert {r.emoji for r in b} == {"🎉", "😈", "😡"}


async def test_reload_swaps_the_model_between_batches_without_losing_a_request(ranker):
    """A second real ranker whose answers differ (its answer matrix reversed, its sentence
    term and catalog head off): requests
    that were answered before the reload match the first, those sent after it the second,
    and every request in flight gets exactly one answer."""
    import numpy as np

    from models.ranker import TextRanker

    other = TextRanker(ranker.folder)
    other.answers = np.ascontiguousarray(other.answers[::-1])
    other.bias = np.ascontiguousarray(other.bias[::-1])
    other.sentence = other.catalog_head = None  # they would outweigh the reversed SQAM
    other.version = "reversed"
    text = "merry christmas everyone"
    want_old = [r.emoji for r in ranker.rank([text], 5)[0]]
    want_new = [r.emoji for r in other.rank([text], 5)[0]]
    assert want_old != want_new
    async with EmojiEngine(ranker, max_batch=8) as engine:
        before = [asyncio.ensure_future(engine.rank_async(text)) for _ in range(200)]
        await before[0]  # the first batch is answered; later ones may be on their way
        engine.reload(other)
        after = [asyncio.ensure_future(engine.rank_async(text)) for _ in range(50)]
        answers_before, answers_after = await asyncio.gather(*before), await asyncio.gather(*after)
        got_before = [[r.emoji for r in x] for x in answers_before]
        got_after = [[r.emoji for r in x] for x in answers_after]
        assert engine.requests == 250 and engine.version == other.version
    assert all(g in (want_old, want_new) for g in got_before)
    # each answer names the version that ranked it, whatever the engine holds by then
    for x, g in zip(answers_before + answers_after, got_before + got_after, strict=True):
        assert x.version == (ranker.version if g == want_old else "reversed")
    assert got_before[0] == want_old  # answered before the reload, by the old model
    assert all(g == want_new for g in got_after)
