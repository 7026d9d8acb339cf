"""`emojibot bench picture`: latency and throughput of picture → emojis.

Figures (measured in this run, on this machine): p50/p99 latency for one picture file
(decode included, 50 generator samples, the whole catalog), pictures/s in batches of
16 through the async engine with many concurrent callers, and peak RSS.
"""

from __future__ import annotations

import asyncio
import os
import resource
import sys
import time
from typing import Any

import numpy as np

from bot.core.engine import PictureEngine
from models.picture import PictureModel


def _jpegs(npz_path: str | os.PathLike, n: int) -> list[bytes]:
    z = np.load(npz_path)
    jpeg, off = z["jpeg"], z["offsets"]
    idx = np.random.default_rng(0).permutation(len(off) - 1)[:n]
    return [jpeg[off[i] : off[i + 1]].tobytes() for i in idx]


async def _engine_throughput(engine: PictureEngine, pictures: list[bytes], n: int, concurrency: int) -> float:
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with sem:
            await engine.answer_async(pictures[i % len(pictures)], 5)

    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    return n / (time.perf_counter() - start)


def bench_picture(
    npz_path: str | os.PathLike, artifacts: str | None = None, n: int = 300, progress: bool = True
) -> dict[str, Any]:
    from tqdm import tqdm

    pictures = _jpegs(npz_path, max(n, 32))
    model = PictureModel(artifacts)
    engine = PictureEngine(model)
    engine.answer(pictures[:16])  # warm-up: traces the model functions
    lat = []
    for data in tqdm(pictures[:n], desc="bench picture: latency", unit="pic", file=sys.stderr, disable=not progress):
        s = time.perf_counter()
        engine.answer([data], 5)
        lat.append(time.perf_counter() - s)
    a = np.asarray(lat) * 1000.0
    batched = []
    for i in range(0, n - 15, 16):
        s = time.perf_counter()
        engine.answer(pictures[i : i + 16], 5)
        batched.append(16 / (time.perf_counter() - s))

    async def run() -> float:
        async with PictureEngine(model, max_batch=16) as eng:
            return await _engine_throughput(eng, pictures, n, concurrency=64)

    return {
        "model_version": model.version,
        "samples_per_picture": model.samples,
        "catalog_size": len(model.chars),
        "picture_p50_ms": round(float(np.percentile(a, 50)), 2),
        "picture_p99_ms": round(float(np.percentile(a, 99)), 2),
        "pictures_per_s_batches_of_16": round(float(np.median(batched)), 1),
        "pictures_per_s_engine_64_concurrent": round(asyncio.run(run()), 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
        "pictures": n,
    }
