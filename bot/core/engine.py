"""The inference engine the bot calls: one loaded model, micro-batched, off the event loop.

``engine.rank(texts, k, candidates)`` ranks a batch synchronously. Concurrent
``await engine.rank_async(text)`` calls are queued; one worker task takes whatever
has gathered (up to ``max_batch``, optionally waiting ``max_wait_ms`` for company), runs
a single batched model call in a worker thread, and resolves each caller's future.
``engine.reload(model)`` swaps the model between batches: a batch that started keeps the
model it started with, the next one takes the new model, and no request waits or is lost.
Requests that arrive while a call runs form the next batch, so under load batches fill
without any waiting (measured: 64 requests per call at 5,400 texts/s with no wait, and a
lone message answered in 1.1 ms instead of 3.4 ms with a 2 ms wait). The event loop
never blocks on NumPy, and a caller always gets an answer or an error, never silence.
"""

from __future__ import annotations

import asyncio
import contextlib
import operator
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from models.ranker import EmptyTextError, Ranked, TextRanker


class Ranking(list):
    """The top emojis of one text, and the version of the model that ranked them (after a
    hot reload the engine's current version may already be another one)."""

    def __init__(self, items, version: str):
        super().__init__(items)
        self.version = version


@dataclass
class _Request:
    payload: object  # a text, or picture bytes
    k: int
    candidates: tuple[str, ...] | None
    future: asyncio.Future = field(repr=False)


class EmojiEngine:
    """Async, micro-batching front of a :class:`TextRanker`."""

    def __init__(self, ranker: TextRanker, max_batch: int = 64, max_wait_ms: float = 0.0):
        self.ranker = ranker
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000.0
        self._queue: asyncio.Queue[_Request] | None = None
        self._worker: asyncio.Task | None = None
        self._pool: ThreadPoolExecutor | None = None
        self.batches = 0
        self.requests = 0
        self.on_batch = None  # called with the size of each model call (metrics)
        self.closed = False  # set by close(); /healthz reports it

    @property
    def version(self) -> str:
        return self.ranker.version

    def rank(self, texts: Sequence[str], k: int = 5, candidates: Sequence[str] | None = None) -> list[list[Ranked]]:
        """Synchronous batch ranking (scripts, evaluation); the bot uses :meth:`rank_async`."""
        return self.ranker.rank(texts, k, candidates)

    async def start(self) -> None:
        """Start (or restart, after :meth:`close` or a crash) the worker."""
        self.closed = False
        if self._worker is None or self._worker.done():
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="emojibot-engine")
            if self._queue is None:
                self._queue = asyncio.Queue()
            self._worker = asyncio.create_task(self._run(), name="emojibot-engine")

    async def close(self) -> None:
        """Stop the worker; every caller still waiting gets an error instead of hanging."""
        self.closed = True
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        while self._queue is not None and not self._queue.empty():
            _fail(self._queue.get_nowait(), RuntimeError("the emoji engine was closed"))
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None

    async def __aenter__(self) -> EmojiEngine:
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def rank_async(self, text: str, k: int = 5, candidates: Sequence[str] | None = None) -> list[Ranked]:
        """Top-``k`` emojis for one text, batched with other concurrent callers.

        Raises, for this caller only: EmptyTextError for blank text, ValueError for a k
        that is not a whole number ≥ 1 or an empty candidate list, UnknownEmojiError for
        an unknown candidate (found by the batch, which then isolates the culprit)."""
        if not isinstance(text, str) or not text.strip():
            raise EmptyTextError("text is empty: give a message to find emojis for")
        return await self._submit(text, k, candidates)

    async def _submit(self, payload, k, candidates: Sequence[str] | None):
        """Check ``k`` and ``candidates``, queue one request and wait for its own result."""
        try:
            k = operator.index(k)
        except TypeError as exc:
            raise ValueError(f"k must be a whole number, not {k!r}") from exc
        if k < 1:
            raise ValueError("k must be at least 1")
        cands = tuple(candidates) if candidates is not None else None
        if cands is not None and not cands:
            raise ValueError("the candidate list is empty")
        await self.start()
        assert self._queue is not None
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        await self._queue.put(_Request(payload, k, cands, fut))
        return await fut

    def reload(self, model) -> None:
        """Answer with ``model`` from the next batch on (a hot reload: no restart, nothing
        dropped; the batch being computed finishes with the model it started with)."""
        self.ranker = model

    def _batch_call(self, model, payloads: list, k: int, candidates):
        """One model call for a batch of requests (run in the worker thread)."""
        return model.rank(payloads, k, candidates)

    async def _run(self) -> None:
        assert self._queue is not None and self._pool is not None
        loop = asyncio.get_running_loop()
        batch: list[_Request] = []
        try:
            while True:
                batch = [await self._queue.get()]
                deadline = loop.time() + self.max_wait
                while len(batch) < self.max_batch:
                    try:
                        batch.append(self._queue.get_nowait())
                        continue
                    except asyncio.QueueEmpty:
                        pass
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    try:
                        batch.append(await asyncio.wait_for(self._queue.get(), remaining))
                    except TimeoutError:
                        break
                groups: dict[tuple[str, ...] | None, list[_Request]] = {}
                for r in batch:
                    groups.setdefault(r.candidates, []).append(r)
                model = self.ranker  # one model per batch, whatever reload() does meanwhile
                for cands, reqs in groups.items():
                    await self._rank_group(loop, model, reqs, cands)
        finally:  # cancelled (close) or crashed: nobody taken off the queue is left waiting
            for r in batch:
                _fail(r, RuntimeError("the emoji engine was closed"))

    async def _rank_group(self, loop, model, reqs: list[_Request], cands) -> None:
        k = max(r.k for r in reqs)
        try:
            ranked = await loop.run_in_executor(
                self._pool, self._batch_call, model, [r.payload for r in reqs], k, cands
            )
        except Exception:
            # One bad text (or candidate list) must not fail its neighbours: rank each
            # alone, so only the culprit gets the error.
            for r in reqs:
                try:
                    res = await loop.run_in_executor(self._pool, self._batch_call, model, [r.payload], r.k, cands)
                except Exception as exc:
                    _fail(r, exc)
                else:
                    self._count_batch(1)
                    self._answer(r, res[0], model)
            return
        self._count_batch(len(reqs))
        for r, res in zip(reqs, ranked, strict=True):
            self._answer(r, res, model)

    def _count_batch(self, size: int) -> None:
        self.batches += 1
        if self.on_batch is not None:
            self.on_batch(size)

    def _answer(self, r: _Request, result, model) -> None:
        self.requests += 1
        if not r.future.done():
            r.future.set_result(self._trim(result, r.k, model))

    @staticmethod
    def _trim(result, k: int, model):
        return Ranking(result[:k], model.version)


class PictureEngine(EmojiEngine):
    """Async, micro-batching front of a :class:`models.picture.PictureModel`.

    ``await engine.answer_async(picture_bytes, k)`` decodes the bytes and samples the
    generator in the worker thread, batched with other concurrent pictures (one generator
    call of 50 samples × pictures). A picture that cannot be read fails only its own
    caller, with :class:`models.picture.PictureError`.
    """

    def __init__(self, model, max_batch: int = 16, max_wait_ms: float = 0.0, max_bytes: int | None = None):
        super().__init__(model, max_batch=max_batch, max_wait_ms=max_wait_ms)  # type: ignore[arg-type]
        from models.picture import DEFAULT_MAX_BYTES

        self.max_bytes = max_bytes or DEFAULT_MAX_BYTES
        self._decoder = None

    async def novel_png(self, answer) -> bytes:
        """A brand-new emoji drawn by the VAE decoder for a picture's answer, as PNG bytes."""

        def draw() -> bytes:
            import io

            from models.drawing import EmojiDecoder, to_image

            if self._decoder is None:
                self._decoder = EmojiDecoder(self.ranker.folder)  # type: ignore[attr-defined]
            buf = io.BytesIO()
            to_image(self.ranker.novel_emoji(answer, self._decoder), scale=4).save(buf, "PNG")  # type: ignore[attr-defined]
            return buf.getvalue()

        return await asyncio.to_thread(draw)

    def rank(self, texts, k=5, candidates=None):  # pragma: no cover - pictures have no text ranking
        raise TypeError("a PictureEngine answers pictures: use answer() or answer_async()")

    def answer(self, pictures: Sequence[bytes], k: int = 5, candidates: Sequence[str] | None = None):
        """Synchronous batch: picture file bytes → one PictureAnswer each."""
        return self._batch_call(self.ranker, list(pictures), k, candidates)

    def reload(self, model) -> None:
        super().reload(model)
        self._decoder = None  # the next novel emoji is drawn with the new model's decoder

    def _batch_call(self, model, payloads: list, k: int, candidates):
        import numpy as np

        from models.picture import decode_picture

        pics = np.stack([decode_picture(b, max_bytes=self.max_bytes) for b in payloads])
        return model.answer(pics, k, candidates)

    @staticmethod
    def _trim(result, k: int, model):
        result.top = result.top[:k]
        return result

    async def answer_async(self, data: bytes, k: int = 5, candidates: Sequence[str] | None = None):
        """The emojis of one picture (bytes of a file), batched with concurrent callers."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"picture must be bytes, not {type(data).__name__}")
        return await self._submit(bytes(data), k, candidates)


def _fail(r: _Request, exc: BaseException) -> None:
    if not r.future.done():
        r.future.set_exception(exc)


__all__ = ["EmojiEngine", "EmptyTextError", "PictureEngine", "Ranked", "Ranking"]
