"""What the running bot counts, in the Prometheus text format (``GET /metrics``).

One registry per bot (not prometheus-client's global one), so several bots in one process
(tests, the bench) never mix their counts.

- ``emojibot_events_total{platform, outcome}``: outcome ``received`` (accepted into the
  inbox), ``handled`` (its actions done), ``duplicate`` (a retry of a known event, dropped),
  ``retried`` (a fault left it pending; it runs again later), ``failed`` (given up after
  the last retry, or refused for good), ``refused`` (the store could not take it: the
  platform was asked to send it again), ``dropped`` (lost at shutdown: never durable);
- ``emojibot_event_seconds{platform}``: event received → its actions done;
- ``emojibot_engine_batch_size{engine}``: requests per model call;
- ``emojibot_model_info{engine, version}``: the model versions answering now (read at each
  scrape: a hot reload shows);
- ``emojibot_pending_events``: events in the inbox not yet done (read when scraped).
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE  # noqa: N811
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

OUTCOMES = ("received", "handled", "duplicate", "retried", "failed", "refused", "dropped")


class BotMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.events = Counter(
            "emojibot_events", "Platform events by outcome", ["platform", "outcome"], registry=self.registry
        )
        self.latency = Histogram(
            "emojibot_event_seconds",
            "Seconds from an event's arrival to its actions done",
            ["platform"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
            registry=self.registry,
        )
        self.batch = Histogram(
            "emojibot_engine_batch_size",
            "Requests answered by one model call",
            ["engine"],
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
            registry=self.registry,
        )
        self.model = Gauge(
            "emojibot_model_info", "Loaded model versions", ["engine", "version"], registry=self.registry
        )
        self.pending = Gauge("emojibot_pending_events", "Events in the inbox not yet done", registry=self.registry)
        self._engines: dict[str, object] = {}  # name → engine whose model version is reported

    def event(self, platform: str, outcome: str, n: int = 1) -> None:
        self.events.labels(platform, outcome).inc(n)

    def count(self, platform: str, outcome: str) -> float:
        """The current value of one event counter (tests, the bench, shutdown's report)."""
        value = self.registry.get_sample_value("emojibot_events_total", {"platform": platform, "outcome": outcome})
        return float(value or 0.0)

    def watch_engine(self, name: str, engine) -> None:
        """Record the engine's batch sizes and its model version (read at each scrape: a
        hot reload changes it)."""
        if engine is None:
            return
        self._engines[name] = engine
        hist = self.batch.labels(name)
        if hasattr(engine, "on_batch"):
            engine.on_batch = hist.observe

    def render(self) -> bytes:
        # the versions answering now: set at startup only, a promotion's reload kept
        # reporting the version the worker started with
        self.model.clear()
        for name, engine in self._engines.items():
            self.model.labels(name, str(getattr(engine, "version", "unknown"))).set(1)
        return generate_latest(self.registry)


__all__ = ["CONTENT_TYPE", "OUTCOMES", "BotMetrics"]
