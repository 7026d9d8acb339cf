"""`emojibot bench text`: speed and memory of text ranking, next to a TF-IDF + SVM baseline.

Figures (all measured in this run, on this machine):
- warm single-text latency p50/p99 (one message at a time, full catalog, top 5);
- throughput in texts/s ranking the full catalog in batches, and through the async
  micro-batching engine with many concurrent callers;
- cold start of `emojibot emojify` (process start → answer printed) and its peak RSS;
- quality on TweetEval val (macro-F1) of both models, for context.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bot.core.engine import EmojiEngine
from models.ranker import TextRanker
from training.bench import BASELINE_CHILD, child_rss_mb, latencies, percentiles, throughput
from training.data import load_tweeteval
from training.metrics import ranking_metrics

COLD_TEXT = "just landed in Barcelona, the beach is unreal"


async def _engine_latency(ranker: TextRanker, texts: list[str], n: int) -> list[float]:
    """One request at a time through the engine: what one message costs the bot."""
    out = []
    async with EmojiEngine(ranker) as engine:
        for i in range(n):
            s = time.perf_counter()
            await engine.rank_async(texts[i % len(texts)], 5)
            out.append(time.perf_counter() - s)
    return out


async def _engine_throughput(ranker: TextRanker, texts: list[str], n: int, concurrency: int) -> float:
    async with EmojiEngine(ranker) as engine:
        sem = asyncio.Semaphore(concurrency)

        async def one(t: str) -> None:
            async with sem:
                await engine.rank_async(t, 5)

        start = time.perf_counter()
        await asyncio.gather(*(one(texts[i % len(texts)]) for i in range(n)))
        return n / (time.perf_counter() - start)


def _emojify_cmd(artifacts: str | None) -> list[str]:
    # The interpreter itself, not a PATH lookup: a shim (pyenv) would add its own start-up
    # and could run another install.
    base = [sys.executable, "-m", "bot.cli"]
    if artifacts:
        base += ["--artifacts", str(artifacts)]
    return base + ["emojify", COLD_TEXT]


def bench_text(
    data_dir: str | os.PathLike,
    artifacts: str | None = None,
    seconds: float = 5.0,
    cold_runs: int = 3,
    progress: bool = True,
) -> dict[str, Any]:
    from tqdm import tqdm

    from training.baseline import train_baseline

    bar = tqdm(total=8, desc="bench text", unit="stage", file=sys.stderr, disable=not progress)

    def stage(name: str) -> None:
        bar.set_postfix_str(name)
        bar.update(1)

    val = load_tweeteval(data_dir, "val")
    texts = [t for t in val.texts if t.strip()]
    ranker = TextRanker(artifacts)
    ranker.rank(texts[:64], 5)  # warm-up

    stage("latency")
    lat = latencies(lambda t: ranker.rank([t], 5), texts, 1000)
    p50, p99 = percentiles(lat)
    stage("engine latency")
    e_p50, e_p99 = percentiles(asyncio.run(_engine_latency(ranker, texts, 1000)))
    stage("throughput")
    tput = throughput(lambda b: ranker.rank(b, 5), texts, 256, seconds)
    n_engine = int(max(1000, tput * seconds))
    stage("engine throughput")
    engine_tput = asyncio.run(_engine_throughput(ranker, texts, n_engine, concurrency=512))
    stage("cold start")
    cold = [child_rss_mb(_emojify_cmd(artifacts)) for _ in range(cold_runs)]
    # Among TweetEval's 20 candidates last: the TweetEval head's sentence block loads the
    # MiniLM encoder (90 MB of weights), and a child forked from a larger process reports
    # a larger peak RSS (the cold start's, above).
    c20 = list(val.label_emojis)
    c_p50, _ = percentiles(latencies(lambda t: ranker.rank([t], 5, c20), texts, 1000))
    from training.minilm import remember_cached

    remember_cached(ranker, val.texts)  # the heads' sentence vectors of val, read back from the cache
    sqam_quality = ranking_metrics(ranker.scores_in_chunks(val.texts, val.label_emojis), val.labels)

    stage("baseline training")
    t0 = time.perf_counter()
    baseline, _ = train_baseline(data_dir)
    baseline_train_s = time.perf_counter() - t0
    stage("baseline speed")
    b_lat = latencies(lambda t: baseline.predict([t]), texts, 1000)
    b_p50, b_p99 = percentiles(b_lat)
    b_tput = throughput(lambda b: baseline.predict(b), texts, 256, seconds)
    pred = baseline.predict(val.texts)
    from training.metrics import macro_f1

    stage("baseline cold start")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "baseline.pkl"
        path.write_bytes(pickle.dumps(baseline))
        b_cold = [child_rss_mb([sys.executable, "-c", BASELINE_CHILD, str(path), COLD_TEXT])
                  for _ in range(cold_runs)]  # fmt: skip

    bar.close()
    return {
        "model_version": ranker.version,
        "catalog_size": len(ranker.chars),
        "sqam_p50_ms": round(p50, 3),
        "sqam_p99_ms": round(p99, 3),
        "sqam_engine_p50_ms": round(e_p50, 3),
        "sqam_engine_p99_ms": round(e_p99, 3),
        "sqam_20_candidates_p50_ms": round(c_p50, 3),
        "sqam_texts_per_s": round(tput, 1),
        "sqam_engine_texts_per_s": round(engine_tput, 1),
        "sqam_cold_start_s": round(float(np.median([c[0] for c in cold])), 3),
        "sqam_peak_rss_mb": round(max(c[1] for c in cold), 1),
        "sqam_val_macro_f1": round(sqam_quality["macro_f1"], 4),
        "baseline_p50_ms": round(b_p50, 3),
        "baseline_p99_ms": round(b_p99, 3),
        "baseline_texts_per_s": round(b_tput, 1),
        "baseline_cold_start_s": round(float(np.median([c[0] for c in b_cold])), 3),
        "baseline_peak_rss_mb": round(max(c[1] for c in b_cold), 1),
        "baseline_val_macro_f1": round(macro_f1(val.labels, np.asarray(pred), len(val.label_emojis)), 4),
        "baseline_train_s": round(baseline_train_s, 1),
        "baseline_candidates": len(val.label_emojis),
        "quality_note": (
            "macro-F1 on TweetEval val among its 20 emojis (SQAM + heads): nothing was tuned on it (the heads' C, "
            "mix and per-emoji offsets were chosen on out-of-fold scores of TweetEval train); the baseline is "
            "untuned. Whole-catalog quality: `emojibot evaluate emojis`"
        ),
        "bench_process_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
    }
