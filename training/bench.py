"""Model-level timing for the benches: latency percentiles, throughput, and a child
process's wall time and peak RSS. The bot's benches (``bot.bench``) add the engine and
the platforms on top; nothing here imports the bot.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time

import numpy as np


def percentiles(samples: list[float]) -> tuple[float, float]:
    a = np.asarray(samples) * 1000.0
    return float(np.percentile(a, 50)), float(np.percentile(a, 99))


def latencies(fn, texts: list[str], n: int) -> list[float]:
    out = []
    for i in range(n):
        t = texts[i % len(texts)]
        s = time.perf_counter()
        fn(t)
        out.append(time.perf_counter() - s)
    return out


def throughput(fn, texts: list[str], batch: int, seconds: float) -> float:
    done, start, i = 0, time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        chunk = [texts[(i + j) % len(texts)] for j in range(batch)]
        fn(chunk)
        done += batch
        i += batch
    return done / (time.perf_counter() - start)


def child_rss_mb(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Run ``cmd`` once; wall seconds and the child's peak RSS in MB (from wait4)."""
    with tempfile.TemporaryFile() as err:  # a file, not a pipe: a chatty child cannot block
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            raise RuntimeError(f"{' '.join(cmd[:3])} failed: {err.read().decode(errors='replace')[-500:]}")
    return seconds, usage.ru_maxrss / 1024.0


BASELINE_CHILD = """
import pickle, sys
model = pickle.load(open(sys.argv[1], "rb"))
print(model.predict([sys.argv[2]])[0])
"""
