"""Which model version the bot answers with, and starting a retrain.

:class:`ModelManager` keeps a worker on the store's ``current`` version: :meth:`sync`
(called by the pipeline every ``poll_s`` seconds) loads a newly promoted version off the
event loop and hands it to the text engine, which switches between two batches: no
message waits, none is dropped or answered twice. A version this worker cannot load (its
folder missing on this host, a file damaged, or files that are not the ones its version
names: ``models.artifacts.verify``) is logged once and tried again every minute;
meanwhile the worker keeps the one it has.

:meth:`start_retrain` starts `emojibot retrain` as a separate process (the bot keeps
answering while it trains); the store's lock makes sure only one runs per database, and
its progress and verdict are rows of ``retrain_runs``. With ``every_hours`` set, the
schedule starts one when the last started longer ago than that.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import sys
import time
from pathlib import Path

log = logging.getLogger("emojibot.models")
STALE_RUN_S = 120.0  # a "running" retrain that has not reported for this long died
RETRY_LOAD_S = 60.0  # a version this worker could not load is tried again after this long


class RetrainUnavailable(RuntimeError):
    """A retrain cannot start (no training data configured, or one is running already)."""


class ModelManager:
    def __init__(
        self,
        store,
        text_engine,
        models_dir: str | os.PathLike = "emojibot-models",
        shipped: str | os.PathLike | None = None,
        data_dir: str | None = None,
        every_hours: float | None = None,
        poll_s: float = 5.0,
        database_url: str | None = None,
    ):
        from models.artifacts import Registry

        self.store, self.text = store, text_engine
        self.registry = Registry(models_dir, shipped)
        self.data_dir, self.every_hours, self.poll_s = data_dir, every_hours, poll_s
        self.database_url = database_url or store.url
        self.start_version = text_engine.version  # answered with while no version is promoted
        self._failed: dict[str, float] = {}  # version → when this worker last failed to load it
        self._proc: asyncio.subprocess.Process | None = None
        self._reaper: asyncio.Task | None = None
        # when this worker last started a scheduled retrain: one that dies before it writes
        # its run row (a data folder that is gone) leaves the store's schedule due, and
        # without this the next tick (every poll_s) would start it again, forever
        self._scheduled_at: float | None = None

    @property
    def version(self) -> str:
        return self.text.version

    async def sync(self) -> str | None:
        """Switch to the store's current version if it is not the one loaded; returns the
        version switched to, or None."""
        from models.artifacts import ArtifactError, verify
        from models.ranker import TextRanker

        wanted = await self.store.current_model() or self.start_version
        if wanted == self.text.version:
            return None
        if time.monotonic() - self._failed.get(wanted, -RETRY_LOAD_S) < RETRY_LOAD_S:
            return None  # tried lately: its folder may reach this host later
        try:
            folder = self.registry.shipped if wanted == self.start_version else self.registry.folder(wanted)
            if folder != self.registry.shipped:  # a retrained version may reach this host file by file
                await asyncio.to_thread(verify, folder)
            ranker = await asyncio.to_thread(TextRanker, folder)
        except (ArtifactError, OSError, ValueError) as exc:
            if wanted not in self._failed:
                log.error("cannot load model %s (%s): still answering with %s", wanted, exc, self.text.version)
            self._failed[wanted] = time.monotonic()
            return None
        self._failed.pop(wanted, None)
        old = self.text.version
        self.text.reload(ranker)
        log.info("model switched: %s → %s", old, wanted)
        return wanted

    @property
    def process_running(self) -> bool:
        """Whether the retrain this worker started is still running (its run row may not
        exist yet: the process is still starting)."""
        return self._proc is not None and self._proc.returncode is None

    async def running_run(self) -> dict | None:
        runs = await self.store.runs(1)
        if runs and runs[0]["status"] == "running":
            if time.time() - float(runs[0]["heartbeat"]) < STALE_RUN_S:
                return runs[0]
        return None

    async def start_retrain(self, trigger: str) -> None:
        """Start `emojibot retrain` in its own process; RetrainUnavailable says why not."""
        if not self.data_dir:
            raise RetrainUnavailable(
                "retraining needs the training data: the operator sets EMOJIBOT_DATA_DIR (see README)"
            )
        if self.process_running or await self.running_run():
            raise RetrainUnavailable("a retrain is already running; `/emojify-admin retrain status` shows it")
        log_path = Path(self.registry.root) / "retrain.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, EMOJIBOT_DATABASE_URL=self.database_url)
        args = [sys.executable, "-m", "bot.cli"]
        if self.registry.shipped != _default_shipped():
            args += ["--artifacts", str(self.registry.shipped)]
        args += ["retrain", "--trigger", trigger, "--data-dir", self.data_dir, "--models-dir", str(self.registry.root)]
        with open(log_path, "ab") as out:
            # the bot's own working directory: relative paths (the SQLite file, the models
            # folder, .env) mean the same to the retrain
            self._proc = await asyncio.create_subprocess_exec(
                *args, stdout=out, stderr=out, stdin=asyncio.subprocess.DEVNULL, env=env
            )
        self._reaper = asyncio.create_task(self._reap(self._proc, log_path))
        log.info("retrain started (%s), pid %d, log %s", trigger, self._proc.pid, log_path)

    @staticmethod
    async def _reap(proc: asyncio.subprocess.Process, log_path: Path) -> int:
        """Wait for the retrain process; a failure is said in the bot's log too, since one
        that fails before it writes its run row shows nowhere else."""
        code = await proc.wait()
        if code:
            log.error("retrain (pid %d) exited with status %d: see %s", proc.pid, code, log_path)
        return code

    async def wait_retrain(self) -> int | None:
        """The exit status of the retrain this worker started (tests, shutdown)."""
        if self._proc is None:
            return None
        return await self._proc.wait()

    async def due(self) -> bool:
        """Whether the schedule wants a retrain now (off unless ``every_hours``)."""
        if not self.every_hours or not self.data_dir:
            return False
        period = self.every_hours * 3600.0
        if self._scheduled_at is not None and time.monotonic() - self._scheduled_at < period:
            return False
        runs = await self.store.runs(1)
        if not runs:
            return True
        started = runs[0]["started_at"]
        if started.tzinfo is None:
            started = started.replace(tzinfo=dt.UTC)
        return dt.datetime.now(dt.UTC) - started >= dt.timedelta(hours=self.every_hours)

    async def tick(self) -> None:
        """The pipeline's periodic call: follow the current version, start a scheduled retrain."""
        await self.sync()
        if await self.due():
            self._scheduled_at = time.monotonic()
            try:
                await self.start_retrain("schedule")
            except RetrainUnavailable as exc:
                log.info("scheduled retrain skipped: %s", exc)

    async def status_text(self) -> str:
        """The latest retrain, for admins."""
        runs = await self.store.runs(1)
        if not runs:
            return "No retrain has run yet."
        r = runs[0]
        when = r["started_at"].strftime("%Y-%m-%d %H:%M UTC")
        head = f"Retrain #{r['id']} ({r['trigger']}, started {when}): *{r['status']}*"
        body = r["progress"] or ""
        res = r.get("result") or {}
        if res.get("candidate_figures"):
            c, n = res["current_figures"], res["candidate_figures"]
            body += (
                f"\nwhole-catalog MRR (held-out tweets) {c['catalog_val_mrr']:.4f} → {n['catalog_val_mrr']:.4f}, "
                f"macro-recall@5 {_fmt(c.get('catalog_val_macro_recall_at_5'))} → "
                f"{_fmt(n.get('catalog_val_macro_recall_at_5'))}; "
                "TweetEval macro-F1 "
                f"{c['tweeteval_val_macro_f1']:.4f} → {n['tweeteval_val_macro_f1']:.4f}; held-out feedback MRR "
                f"{_fmt(c['feedback_mrr'])} → {_fmt(n['feedback_mrr'])}"
            )
        return f"{head}\n{body}".strip()

    async def close(self) -> None:
        if self._reaper is not None and not self._reaper.done():
            self._reaper.cancel()  # the retrain process goes on by itself


def _fmt(x) -> str:
    return f"{x:.4f}" if isinstance(x, float) else "-"


def _default_shipped() -> Path:
    from models.artifacts import artifacts_dir

    return artifacts_dir()
